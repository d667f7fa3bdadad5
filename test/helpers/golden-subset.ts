// A subset of PyECLib's golden cases (test/fixtures/golden.json) for runtimes where the full
// set costs too much: all four ec_types, three shapes each, lengths from 7 B past 64 KiB, and
// one 1 MiB case per ec_type. Plus the check of what a runtime computed against them.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

export interface GoldenCase {
  ec_type: 'liberasurecode_rs_vand' | 'isa_l_rs_vand' | 'isa_l_rs_cauchy' | 'jerasure_rs_vand';
  k: number;
  m: number;
  length: number;
  seed: number;
  fragment_length: number;
  fragments: string[];
  header0: string;
  reconstruct: Array<{ missing: number[]; rebuilt: string[] }>;
}

/** What a runtime answers for one case (see test/runtimes/workerd-golden-worker.js). */
export interface GoldenResult {
  kernel: string;
  fragmentLength: number;
  header0: string;
  fragments: string[];
  rebuilt: string[][];
  decoded: boolean[];
}

export function goldenCases(): GoldenCase[] {
  const all = (JSON.parse(readFileSync(new URL('../fixtures/golden.json', import.meta.url), 'utf8')) as { cases: GoldenCase[] }).cases;
  return all.filter(
    (c) =>
      (['2+1', '6+3', '10+4'].includes(`${c.k}+${c.m}`) && [7, 4097, 65557].includes(c.length)) ||
      (c.k === 12 && c.m === 4 && c.length === 1048593),
  );
}

/** Asserts that results match the cases, case by case, all computed by `kernel`. */
export function expectGolden(cases: GoldenCase[], results: GoldenResult[], kernel: string): void {
  expect(results).toHaveLength(cases.length);
  cases.forEach((c, i) => {
    const r = results[i]!;
    const name = `${c.ec_type} ${c.k}+${c.m} ${c.length} B`;
    expect(r.kernel, name).toBe(kernel);
    expect(r.fragmentLength, name).toBe(c.fragment_length);
    expect(r.header0, name).toBe(c.header0);
    expect(r.fragments, name).toEqual(c.fragments);
    expect(r.rebuilt, name).toEqual(c.reconstruct.map((p) => p.rebuilt));
    expect(r.decoded, name).toEqual(c.reconstruct.map(() => true));
  });
}
