// The liberasurecode backends fragmend implements, with the identity each writes into
// fragment headers (liberasurecode 1.6.2's backend ids and versions).

export type ECType = 'liberasurecode_rs_vand' | 'jerasure_rs_vand' | 'isa_l_rs_vand' | 'isa_l_rs_cauchy';

export interface Backend {
  readonly ecType: ECType;
  /** ec_backend_id_t */
  readonly id: number;
  /** ec_backend_version: (major << 16) | (minor << 8) | rev */
  readonly version: number;
  /** Field width in bits: regions are bytes (8) or little-endian 16-bit words (16). */
  readonly w: 8 | 16;
  /** Generator kind understood by the wasm generatorMatrix export. */
  readonly matrixKind: number;
  /** Largest parity count for which every k-subset of rows is invertible, if limited. */
  readonly mdsMaxParity?: number;
}

export const BACKENDS: Readonly<Record<ECType, Backend>> = {
  liberasurecode_rs_vand: { ecType: 'liberasurecode_rs_vand', id: 6, version: 0x010000, w: 16, matrixKind: 0 },
  jerasure_rs_vand: { ecType: 'jerasure_rs_vand', id: 1, version: 0x020000, w: 16, matrixKind: 1 },
  // gf_gen_rs_matrix is not MDS from 5 parity rows on (Swift bug 1639691).
  isa_l_rs_vand: { ecType: 'isa_l_rs_vand', id: 4, version: 0x020d00, w: 8, matrixKind: 2, mdsMaxParity: 4 },
  isa_l_rs_cauchy: { ecType: 'isa_l_rs_cauchy', id: 7, version: 0x020e01, w: 8, matrixKind: 3 },
};

export const EC_TYPES = Object.keys(BACKENDS) as ECType[];

/** Every backend id liberasurecode knows, for messages about foreign fragments. */
export const BACKEND_NAMES: Readonly<Record<number, string>> = {
  0: 'null',
  1: 'jerasure_rs_vand',
  2: 'jerasure_rs_cauchy',
  3: 'flat_xor_hd',
  4: 'isa_l_rs_vand',
  5: 'shss',
  6: 'liberasurecode_rs_vand',
  7: 'isa_l_rs_cauchy',
  8: 'libphazr',
  9: 'isa_l_rs_vand_inv',
  10: 'isa_l_rs_lrc',
};

export function backendName(id: number): string {
  return BACKEND_NAMES[id] ?? `unknown backend ${id}`;
}

export function isECType(s: string): s is ECType {
  return Object.prototype.hasOwnProperty.call(BACKENDS, s);
}
