// The mount check (mount_check, and recon's unmounted and diskusage) against Swift's own
// ismount, on the cases operators meet: plain directories, mount points, symlinked devices, and
// the `.ismount` stub file containerized deployments place where device numbers mislead.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isMountSync } from '../../src/swift/fsutil.js';
import { runPython, swiftPythonEnabled } from '../helpers/swift-python.js';

describe.skipIf(!swiftPythonEnabled())("isMountSync, against Swift's ismount", () => {
  const root = mkdtempSync(join(tmpdir(), 'fragmend-ismount-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('agrees on every case', () => {
    const dir = (name: string, stub = false) => {
      mkdirSync(join(root, name));
      if (stub) writeFileSync(join(root, name, '.ismount'), '');
      return join(root, name);
    };
    const plain = dir('plain');
    const stubbed = dir('stubbed', true);
    const stubDir = dir('stub-is-a-dir');
    mkdirSync(join(stubDir, '.ismount'));
    symlinkSync(plain, join(root, 'link-to-plain'));
    symlinkSync(stubbed, join(root, 'link-to-stubbed'));
    symlinkSync('/proc', join(root, 'link-to-proc'));
    writeFileSync(join(root, 'a-file'), '');
    const cases = [
      plain,
      stubbed,
      stubDir,
      join(root, 'link-to-plain'),
      join(root, 'link-to-stubbed'),
      join(root, 'link-to-proc'),
      join(root, 'a-file'),
      join(root, 'missing'),
      join(root, 'a-file', 'below-a-file'),
      '/',
      '/proc',
      '/sys',
      '/dev',
      '/usr',
    ];
    const swift = runPython<boolean[]>('import json, sys\nfrom swift.common.utils import ismount\nprint(json.dumps([ismount(p) for p in json.load(sys.stdin)]))', cases);
    expect(cases.map(isMountSync)).toEqual(swift);
    // the cases cover both answers, each more than once
    expect(swift.filter(Boolean).length).toBeGreaterThan(3);
    expect(swift.filter((x) => !x).length).toBeGreaterThan(3);
  });
});
