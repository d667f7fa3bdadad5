// Typed errors of the codec. Each names the bad input; none is ever replaced by wrong bytes.
// The names follow liberasurecode's error codes where one fits (EINVALIDPARAMS, EBADHEADER,
// EBADCHKSUM, EINSUFFFRAGS, EBACKENDNOTSUPP), so Swift operators recognise them.

export class ECError extends Error {
  /** liberasurecode's name for this class of failure. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A parameter is out of range: k, m, an index, a size, an option. */
export class ECInvalidParameter extends ECError {
  constructor(message: string) {
    super('EINVALIDPARAMS', message);
  }
}

/** The ec_type (or matrix) is not one fragmend implements, or is refused for this shape. */
export class ECBackendNotSupported extends ECError {
  constructor(message: string) {
    super('EBACKENDNOTSUPP', message);
  }
}

/** A fragment header is unreadable: too short, bad magic, bad metadata checksum, wrong backend. */
export class ECBadHeader extends ECError {
  constructor(message: string) {
    super('EBADHEADER', message);
  }
}

/** A fragment's inline payload checksum does not match its payload. */
export class ECBadChecksum extends ECError {
  constructor(message: string) {
    super('EBADCHKSUM', message);
  }
}

/** Fewer usable fragments than the operation needs. */
export class ECInsufficientFragments extends ECError {
  constructor(message: string) {
    super('EINSUFFFRAGS', message);
  }
}

/** The submatrix of the chosen fragments cannot be inverted (a non-MDS generator). */
export class ECSingularMatrix extends ECError {
  constructor(message: string) {
    super('EBADPARAMS', message);
  }
}

/**
 * No usable wasm build: none was given (fragmend/codec/core before init({ wasm })), or one
 * could not be fetched, read or compiled. liberasurecode's name for a backend that cannot be
 * loaded.
 */
export class ECWasmUnavailable extends ECError {
  constructor(message: string) {
    super('EBACKENDNOTAVAIL', message);
  }
}
