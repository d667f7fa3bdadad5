// Config files parse as Python's configparser parses them for Swift's readconf (the judge is
// the real interpreter): hundreds of generated configs with continuations, comments,
// interpolation, duplicates and garbage, compared section by section.
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ConfigParser, OptionReader, readConf } from '../../src/swift/conf.js';
import { pyFloat, pyInt } from '../../src/swift/python-values.js';
import { runPython } from '../helpers/swift-python.js';
import { spawnSync } from 'node:child_process';

const PY = String.raw`
import json, sys, configparser
class NicerInterpolation(configparser.BasicInterpolation):
    def before_get(self, parser, section, option, value, defaults):
        if '%(' not in value:
            return value
        return super().before_get(parser, section, option, value, defaults)
out = []
for text in json.load(sys.stdin):
    c = configparser.ConfigParser({'defkey': 'dv', 'pct': '5%'}, interpolation=NicerInterpolation())
    try:
        c.read_string(text)
    except configparser.Error as e:
        out.append('readerror'); continue
    res = {}
    for s in c.sections() + ['DEFAULT']:
        try:
            res[s] = [list(kv) for kv in c.items(s)]
        except configparser.Error as e:
            res[s] = 'error'
    out.append(res)
print(json.dumps(out))
`;

const python = spawnSync('/usr/bin/python3', ['-c', 'import configparser']).status === 0;

function ours(text: string): unknown {
  const c = new ConfigParser({ defaults: { defkey: 'dv', pct: '5%' }, interpolation: 'nicer' });
  try {
    c.readString(text);
  } catch (e) {
    if (e instanceof ConfigError) return 'readerror';
    throw e;
  }
  const res: Record<string, unknown> = {};
  for (const s of [...c.sections(), 'DEFAULT']) {
    try {
      res[s] = c.items(s);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      res[s] = 'error';
    }
  }
  return res;
}

const key = fc.constantFrom('a', 'B', 'bind_port', 'Key Two', 'x', 'defkey', 'devices', 'k:v', '');
const val = fc.constantFrom('1', 'value', '', ' spaced  ', '%(a)s', '%(defkey)s-%(x)s', '5%', '%%', '100%(', '%(missing)s', 'a = b', '# not a comment', 'x ; y', '%(b)s');
const section = fc
  .tuple(fc.constantFrom('', ' ', '  '), fc.constantFrom('main', 'DEFAULT', 'object-reconstructor', 'Main', 'a]b', 'main'), fc.constantFrom('', '', ' trailing', ']'))
  .map(([sp, n, t]) => `${sp}[${n}]${t}`);
const line = fc.oneof(
  { arbitrary: section, weight: 2 },
  { arbitrary: fc.tuple(key, fc.constantFrom(' = ', '=', ': ', ' : ', ' =  '), val).map(([k, d, v]) => `${k}${d}${v}`), weight: 6 },
  { arbitrary: fc.tuple(fc.constantFrom(' ', '\t', '    '), val).map(([sp, v]) => `${sp}${v || 'cont'}`), weight: 2 },
  { arbitrary: fc.constantFrom('', '   ', '# comment', '; comment', '  # indented comment'), weight: 2 },
  { arbitrary: fc.constantFrom('garbage line', '[', '[]'), weight: 1 },
);
// Mostly well-formed files (a section first), so that values, not just failures, are compared.
const configText = fc
  .tuple(fc.oneof({ arbitrary: section, weight: 9 }, { arbitrary: line, weight: 1 }), fc.array(line, { minLength: 0, maxLength: 14 }))
  .map(([first, ls]) => [first, ...ls].join('\n') + '\n');

describe.runIf(python)('configparser semantics, judged by Python', () => {
  it('generated configs parse to the same items or the same failure', () => {
    const texts = fc.sample(configText, { seed: 11, numRuns: 1500 });
    texts.push(
      '[main]\na = 1\n  continued\n\n  after blank\nb: 2\n',
      '[main]\na = 1\n# c\n  x\n',
      '[DEFAULT]\nx = 1\n[main]\ny = %(x)s%(defkey)s\n',
      '[main]\na = %(b)s\nb = %(a)s\n',
      'a = 1\n[main]\n',
      '[main]\na = 1\na = 2\n',
      '[main]\n[main]\n',
      '[DEFAULT]\n[DEFAULT]\nz=1\n',
      '[main]\nfallocate_reserve = 1%\n',
    );
    const theirs = runPython<unknown[]>(PY, texts);
    texts.forEach((t, i) => expect(ours(t), JSON.stringify(t)).toEqual(theirs[i]));
  });
});

describe('readConf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fragmend-conf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a section with DEFAULT inherited, log_name and __file__', async () => {
    const f = join(dir, 'object-server.conf');
    writeFileSync(f, '[DEFAULT]\ndevices = /srv/node\nbind_port = 6200\n\n[object-reconstructor]\nconcurrency = 4\nbind_port = 6201\n');
    expect(await readConf(f, 'object-reconstructor')).toEqual({
      devices: '/srv/node',
      bind_port: '6201',
      concurrency: '4',
      log_name: 'object-reconstructor',
      __file__: f,
    });
    await expect(readConf(f, 'object-replicator')).rejects.toThrow(/Unable to find object-replicator config section/);
    await expect(readConf(join(dir, 'nope.conf'), 'x')).rejects.toThrow(/Unable to read config/);
  });

  it('reads a conf.d directory: *.conf files in sorted order, later files override', async () => {
    const d = join(dir, 'object-server.conf.d');
    mkdirSync(d);
    writeFileSync(join(d, '00_base.conf'), '[DEFAULT]\ndevices = /srv/node\n[object-reconstructor]\nconcurrency = 1\n');
    writeFileSync(join(d, '10_site.conf'), '[object-reconstructor]\nconcurrency = 8\n');
    writeFileSync(join(d, '.hidden.conf'), '[object-reconstructor]\nconcurrency = 99\n');
    writeFileSync(join(d, 'notes.txt'), 'not a config');
    const conf = await readConf(d, 'object-reconstructor');
    expect(conf).toMatchObject({ devices: '/srv/node', concurrency: '8' });
  });
});

describe('option values, as swift.common.utils converts them', () => {
  it('Python int() and float() of strings', () => {
    expect([' 12 ', '007', '1_000', '+5', '-3'].map(pyInt)).toEqual([12, 7, 1000, 5, -3]);
    expect(['1.0', '', '0x10', '1__0', '_1', 'abc'].map(pyInt)).toEqual([null, null, null, null, null, null]);
    expect(['1.5', '.5', '5.', '1e3', ' 2 ', '1_0.5'].map(pyFloat)).toEqual([1.5, 0.5, 5, 1000, 2, 10.5]);
    expect(pyFloat('0x1')).toBeNull();
  });

  it('OptionReader names the option in errors', () => {
    const r = new OptionReader({ concurrency: 'many', interval: '30.5', handoffs_only: 'yes', devices: 'sda, sdb,,' }, '[object-reconstructor]');
    expect(() => r.int('concurrency', 1)).toThrow(/concurrency must be an integer, not "many"/);
    expect(r.float('interval', 30)).toBe(30.5);
    expect(r.bool('handoffs_only', false)).toBe(true);
    expect(r.bool('missing', true)).toBe(true);
    expect(r.list('devices')).toEqual(['sda', 'sdb']);
    expect(() => r.float('interval', 1, { max: 10 })).toThrow(/<= 10/);
  });

  it('never throws anything but ConfigError on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const c = new ConfigParser();
        try {
          c.readString(text);
          for (const s of c.sections()) c.items(s);
        } catch (e) {
          expect(e).toBeInstanceOf(ConfigError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
