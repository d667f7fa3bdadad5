// SSYNC lines as Swift 2.30 writes and reads them (judged by swift.obj.ssync_sender and
// ssync_receiver), and the line reader's limits.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeMissing,
  decodeWanted,
  encodeMissing,
  encodeSubrequestHead,
  encodeWanted,
  errorLine,
  LineReader,
  SsyncProtocolError,
  SsyncTimeout,
} from '../../src/replication/ssync-protocol.js';
import { Timestamp } from '../../src/swift/timestamp.js';
import { runPython, swiftPythonEnabled } from '../helpers/swift-python.js';

const PY = String.raw`
import json, sys
from swift.common.utils import Timestamp
from swift.obj.ssync_sender import encode_missing, decode_wanted
from swift.obj.ssync_receiver import decode_missing, encode_wanted
out = []
for c in json.load(sys.stdin):
    ts = Timestamp(c['ts_data'])
    meta = Timestamp(c['ts_meta']) if c.get('ts_meta') else None
    ctype = Timestamp(c['ts_ctype']) if c.get('ts_ctype') else None
    kw = {} if c['durable'] else {'durable': False}
    line = encode_missing(c['hash'], ts, meta, ctype, **kw)
    d = decode_missing(line)
    local = {}
    if c.get('local'):
        local = {k: Timestamp(v) for k, v in c['local'].items()}
    wanted = encode_wanted(d, local)
    out.append({'line': line.decode(), 'decoded': {k: (v.internal if hasattr(v, 'internal') else v) for k, v in d.items()},
                'wanted': wanted, 'wanted_parts': decode_wanted(wanted.split()[1:]) if wanted else None,
                'error': "':ERROR: %d %r\n'" and (':ERROR: %d %r\n' % (500, c['msg']))})
print(json.dumps(out))
`;

const hex32 = fc.stringMatching(/^[0-9a-f]{32}$/);
const tsArb = fc.integer({ min: 1_000_000_000_00000, max: 1_900_000_000_00000 }).map((raw) => new Timestamp(raw / 1e5));

describe.runIf(swiftPythonEnabled())("missing_check and wanted lines, judged by Swift's own functions", () => {
  it('encode_missing, decode_missing, encode_wanted, decode_wanted and error lines agree', () => {
    const cases = fc.sample(
      fc.record({
        hash: hex32,
        data: tsArb,
        metaDelta: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000_000 })),
        ctypeDelta: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000_000 })),
        durable: fc.boolean(),
        localShift: fc.option(fc.integer({ min: -5, max: 5 })),
        msg: fc.string({ maxLength: 30 }),
      }),
      { seed: 3, numRuns: 400 },
    ).map((c) => {
      const meta = c.metaDelta ? new Timestamp(c.data, { delta: c.metaDelta }) : null;
      const ctype = meta && c.ctypeDelta ? new Timestamp(c.data, { delta: Math.min(c.ctypeDelta, c.metaDelta) }) : null;
      const local =
        c.localShift === null
          ? null
          : { ts_data: new Timestamp(c.data, { delta: c.localShift }).internal, ts_meta: new Timestamp(c.data, { delta: c.localShift + 1 }).internal, ts_ctype: c.data.internal };
      return { hash: c.hash, ts_data: c.data.internal, ts_meta: meta?.internal, ts_ctype: ctype?.internal, durable: c.durable, local, msg: c.msg };
    });
    const theirs = runPython<Array<Record<string, any>>>(PY, cases);
    cases.forEach((c, i) => {
      const t = theirs[i]!;
      const line = encodeMissing(c.hash, new Timestamp(c.ts_data), c.ts_meta ? new Timestamp(c.ts_meta) : null, c.ts_ctype ? new Timestamp(c.ts_ctype) : null, c.durable);
      expect(line).toBe(t.line);
      const d = decodeMissing(line);
      expect({ object_hash: d.hash, ts_data: d.tsData.internal, ts_meta: d.tsMeta.internal, ts_ctype: d.tsCtype.internal, durable: d.durable }).toEqual(t.decoded);
      const local = c.local ? { tsData: new Timestamp(c.local.ts_data), tsMeta: new Timestamp(c.local.ts_meta), tsCtype: new Timestamp(c.local.ts_ctype) } : {};
      const wanted = encodeWanted(d, local);
      expect(wanted).toBe(t.wanted);
      if (wanted) expect(decodeWanted(wanted)).toMatchObject(t.wanted_parts);
      expect(errorLine(500, c.msg)).toBe(t.error);
    });
  });

  it("quotes what Python's quote() quotes, beyond hex digits too", () => {
    const names = ['a b/c', "it's(*)!", '~_.-/', 'é%2F', 'a\tb?c#d'];
    const theirs = runPython<string[]>(
      String.raw`
import json, sys
from swift.common.utils import Timestamp
from swift.obj.ssync_sender import encode_missing
print(json.dumps([encode_missing(n, Timestamp('1700000000.12345')).decode() for n in json.load(sys.stdin)]))
`,
      names,
    );
    expect(names.map((n) => encodeMissing(n, new Timestamp('1700000000.12345')))).toEqual(theirs);
  });
});

describe('SSYNC lines', () => {
  it('subrequest heads list headers in sorted order', () => {
    expect(encodeSubrequestHead('PUT', '/AUTH_a/c/o b', { 'X-Timestamp': '1', 'Content-Length': '3', ETag: 'e' })).toBe(
      'PUT /AUTH_a/c/o%20b\r\nContent-Length: 3\r\nETag: e\r\nX-Timestamp: 1\r\n\r\n',
    );
  });

  it('malformed offers are SsyncProtocolErrors, never anything else', () => {
    for (const bad of ['', 'x', 'nothex 1700000000.00000', `${'a'.repeat(32)} notatime`, `${'a'.repeat(32)} 1700000000.00000 m:zz`, `${'a'.repeat(32)} 1700000000.00000 m:1:2`]) {
      expect(() => decodeMissing(bad), bad).toThrow(SsyncProtocolError);
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (s) => {
        try {
          decodeMissing(s);
        } catch (e) {
          expect(e).toBeInstanceOf(SsyncProtocolError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('the line reader enforces its limits and timeouts', async () => {
    async function* src() {
      yield Buffer.from('one\r\ntw');
      yield Buffer.from('o\nxxxxxxxxxxxxxxxxxxxx');
      await new Promise((r) => setTimeout(r, 300));
    }
    const r = new LineReader(src());
    expect(await r.readLine(1000, 'l1')).toBe('one');
    expect(await r.readLine(1000, 'l2')).toBe('two');
    await expect(r.readLine(1000, 'l3', 10)).rejects.toBeInstanceOf(SsyncProtocolError);
    async function* slow() {
      await new Promise((r) => setTimeout(r, 500));
      yield Buffer.from('late\n');
    }
    await expect(new LineReader(slow()).readLine(50, 'slow line')).rejects.toBeInstanceOf(SsyncTimeout);
  });
});
