// node:crypto is loaded only where bulk data is hashed or a rare path needs it: loading it
// is a good part of a daemon's start-up, and a reconstructor pass needs it for neither its
// short MD5s (md5.ts) nor the names of its temporary files.
import { createRequire } from 'node:module';

let cryptoModule: typeof import('node:crypto') | undefined;
/** node:crypto, loaded on first use */
export const nodeCrypto = (): typeof import('node:crypto') => (cryptoModule ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'));

const HEX = '0123456789abcdef';
/**
 * `bytes` random bytes as hex, for the name of a temporary file or of a quarantined copy. Those
 * are created exclusively (O_EXCL, or a rename that refuses an existing target), so what the
 * name needs is to differ from its neighbours', not to be unguessable.
 */
export function randomHex(bytes: number): string {
  let s = '';
  for (let i = 0; i < bytes * 2; i++) s += HEX[(Math.random() * 16) | 0];
  return s;
}
