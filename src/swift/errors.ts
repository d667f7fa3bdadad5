// Typed errors of the Swift-facing modules.

/**
 * A ring cannot be read, written or built: bad gzip, bad magic or format version, metadata
 * that is not what Swift writes, a truncated or inconsistent assignment table, or a device
 * list the builder cannot place replicas on. Readers raise nothing else on bad bytes.
 */
export class RingError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A pickle cannot be read or written: truncated or malformed bytes, an opcode or global that
 * is not plain data, a limit exceeded, or a value with no pickle form. `offset` is the byte
 * offset of the opcode at fault and `opcode` its name, when the error comes from reading.
 */
export class PickleError extends Error {
  readonly offset: number | undefined;
  readonly opcode: string | undefined;
  constructor(message: string, options?: { offset?: number; opcode?: string; cause?: unknown }) {
    super(message, options && 'cause' in options ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.offset = options?.offset;
    this.opcode = options?.opcode;
  }
}
