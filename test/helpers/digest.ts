import { createHash } from 'node:crypto';

/** First 16 hex digits of SHA-256, as scripts/gen-golden.py stores them. */
export const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').slice(0, 16);

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/** Full SHA-256: compares large arrays quickly where toEqual would walk them element by element. */
export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
