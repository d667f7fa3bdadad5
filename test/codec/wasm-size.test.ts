// The wasm builds stay small: each is inlined into fragmend/codec as base64 and shipped three
// times over (inline, .wasm files, workerd), so growth should be a decision, not an accident.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

// Today: about 14 KB (relaxed, SIMD) and 7 KB (scalar), 4.2 KB and 2.4 KB gzipped.
const BUDGET = 32 * 1024;
const GZIP_BUDGET = 12 * 1024;

describe.each(['relaxed', 'simd', 'scalar'])('build/fragmend-%s.wasm', (kind) => {
  const bytes = readFileSync(new URL(`../../build/fragmend-${kind}.wasm`, import.meta.url));
  it(`is at most ${BUDGET} bytes, ${GZIP_BUDGET} gzipped`, () => {
    expect(bytes.length).toBeGreaterThan(1024);
    expect(bytes.length).toBeLessThanOrEqual(BUDGET);
    expect(gzipSync(bytes, { level: 9 }).length).toBeLessThanOrEqual(GZIP_BUDGET);
  });
});
