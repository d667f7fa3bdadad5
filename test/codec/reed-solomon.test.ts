// The plain ReedSolomon API speaks the same code as ECDriver: its parity shards are the
// payloads of liberasurecode's parity fragments for the same (padded) data.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ECDriver, EC_TYPES, HEADER_SIZE, ReedSolomon } from '../../src/codec/index.js';
import { prngBytes } from '../helpers/prng.js';

describe('ReedSolomon', () => {
  it.each(EC_TYPES)('%s parity = ECDriver parity payloads', async (ecType) => {
    const k = 6;
    const m = 3;
    const ec = await ECDriver.create({ k, m, ecType });
    const rs = await ReedSolomon.create({ k, m, matrix: ecType });
    const data = prngBytes(99, 6000);
    const frags = ec.encode(data);
    const payloads = frags.map((f) => f.subarray(HEADER_SIZE));
    const parity = rs.encode(payloads.slice(0, k));
    expect(parity).toEqual(payloads.slice(k));
    expect(rs.verify(payloads)).toBe(true);
    const corrupt = payloads.map((p) => p.slice());
    corrupt[7]![10] ^= 1;
    expect(rs.verify(corrupt)).toBe(false);
  });

  it('dataOnly rebuilds data shards and leaves lost parity out', async () => {
    const rs = await ReedSolomon.create({ k: 4, m: 2 });
    const shards = Array.from({ length: 4 }, (_, i) => prngBytes(i + 10, 333));
    const all = [...shards, ...rs.encode(shards)];
    const back = rs.reconstruct([null, all[1], all[2], all[3], null, all[5]], { dataOnly: true });
    expect(back.slice(0, 4)).toEqual(shards);
    expect(back[4]).toBeNull();
  });

  it('zero parity shards is a valid (if useless) code', async () => {
    const rs = await ReedSolomon.create({ k: 3, m: 0 });
    expect(rs.encode([new Uint8Array(5), new Uint8Array(5), new Uint8Array(5)])).toEqual([]);
  });
});

describe('runtime neutrality', () => {
  it('nothing under src/codec imports node:* modules', () => {
    const dir = new URL('../../src/codec/', import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(new URL(f, dir), 'utf8');
      expect(text, f).not.toMatch(/from ['"]node:|require\(['"]node:|from ['"](fs|path|crypto|zlib|os)['"]/);
    }
  });
});
