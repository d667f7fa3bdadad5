// object.recon written by several reconstructor workers at once: each merges its own per-disk
// entry under the file's lock, and none is lost to another's rename.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { dumpReconCache } from '../../src/reconstructor/recon.js';

const dir = mkdtempSync(join(tmpdir(), 'fragmend-recon-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('concurrent updates of object.recon all land', async () => {
  const file = join(dir, 'object.recon');
  for (let round = 0; round < 5; round++) {
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        dumpReconCache({ object_reconstruction_per_disk: { [`d${i}`]: { object_reconstruction_last: round, pid: 1000 + i } } }, file),
      ),
    );
    const entry = JSON.parse(readFileSync(file, 'utf8').split('\n')[0]!) as { object_reconstruction_per_disk: Record<string, { object_reconstruction_last: number }> };
    expect(Object.keys(entry.object_reconstruction_per_disk).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `d${i}`).sort());
    expect(Object.values(entry.object_reconstruction_per_disk).every((d) => d.object_reconstruction_last === round)).toBe(true);
  }
});
