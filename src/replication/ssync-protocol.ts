// The SSYNC conversation's lines, as Swift 2.30's ssync_sender and ssync_receiver write and
// read them: missing_check offers (<hash> <ts_data>[ m:<hex>,t:<hex>,durable:False]), wanted
// replies (<hash> d|m|dm), subrequest heads (METHOD path, sorted headers, blank line) and
// ':ERROR: <code> <repr>' lines. A line that breaks the grammar is an SsyncProtocolError
// naming it; nothing is guessed.
import { Timestamp, TimestampError } from '../swift/timestamp.js';

export class SsyncProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SsyncProtocolError';
  }
}

export const MISSING_CHECK_START = ':MISSING_CHECK: START';
export const MISSING_CHECK_END = ':MISSING_CHECK: END';
export const UPDATES_START = ':UPDATES: START';
export const UPDATES_END = ':UPDATES: END';
/** Swift's network_chunk_size: the longest line either side reads. */
export const MAX_LINE = 65536;

export interface OfferedObject {
  hash: string;
  tsData: Timestamp;
  tsMeta: Timestamp;
  tsCtype: Timestamp;
  durable: boolean;
}

/** what Python's quote() leaves alone: hashes and timestamps are all made of these */
const QUOTE_SAFE = /^[A-Za-z0-9_.~/-]*$/;
const quote = (s: string) => (QUOTE_SAFE.test(s) ? s : encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()).replace(/%2F/gi, '/'));

/** encode_missing: one offer line, without its CRLF. */
export function encodeMissing(hash: string, tsData: Timestamp, tsMeta?: Timestamp | null, tsCtype?: Timestamp | null, durable = true): string {
  let msg = `${quote(hash)} ${quote(tsData.internal)}`;
  const extra: string[] = [];
  if (tsMeta && !tsMeta.equals(tsData)) {
    extra.push(`m:${(tsMeta.raw - tsData.raw).toString(16)}`);
    if (tsCtype && !tsCtype.equals(tsData)) extra.push(`t:${(tsCtype.raw - tsData.raw).toString(16)}`);
  }
  if (!durable) extra.push('durable:False');
  if (extra.length) msg += ` ${extra.join(',')}`;
  return msg;
}

function hexDelta(v: string, line: string): number {
  // Newer senders append '__<hex offset>' to a delta; its timestamp keeps no offset here, as in 2.30.
  const m = /^([+-]?[0-9a-fA-F]+)(?:__[0-9a-fA-F]+)?$/.exec(v);
  if (!m) throw new SsyncProtocolError(`bad timestamp delta in missing_check line ${JSON.stringify(line.slice(0, 200))}`);
  return parseInt(m[1]!, 16);
}

/** decode_missing: a sender's offer line. */
export function decodeMissing(line: string): OfferedObject {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2 || !parts[0]) throw new SsyncProtocolError(`bad missing_check line ${JSON.stringify(line.slice(0, 200))}`);
  try {
    const hash = decodeURIComponent(parts[0]);
    const tsText = decodeURIComponent(parts[1]!);
    const tsData = new Timestamp(tsText);
    const offered: OfferedObject = { hash, tsData, tsMeta: tsData, tsCtype: tsData, durable: true };
    if (parts.length > 2) {
      for (const item of decodeURIComponent(parts[2]!).split(',').filter((s) => s.includes(':'))) {
        const bits = item.split(':');
        if (bits.length !== 2) throw new SsyncProtocolError(`bad missing_check extra ${JSON.stringify(item)}`);
        const [k, v] = bits as [string, string];
        if (k === 'm') offered.tsMeta = new Timestamp(tsText, { delta: hexDelta(v, line) });
        else if (k === 't') offered.tsCtype = new Timestamp(tsText, { delta: hexDelta(v, line) });
        else if (k === 'durable') offered.durable = ['true', '1', 'yes', 'on', 't', 'y'].includes(v.toLowerCase());
      }
    }
    if (!/^[0-9a-f]{32}$/.test(hash)) throw new SsyncProtocolError(`bad object hash ${JSON.stringify(hash.slice(0, 64))}`);
    return offered;
  } catch (e) {
    if (e instanceof SsyncProtocolError) throw e;
    if (e instanceof TimestampError || e instanceof URIError) {
      throw new SsyncProtocolError(`bad missing_check line ${JSON.stringify(line.slice(0, 200))}: ${e.message}`);
    }
    throw e;
  }
}

export interface LocalState {
  tsData?: Timestamp;
  tsMeta?: Timestamp;
  tsCtype?: Timestamp;
}

/** encode_wanted: what the receiver asks for, or null when it is in sync. */
export function encodeWanted(remote: OfferedObject, local: LocalState): string | null {
  let data = false;
  let meta = false;
  if (local.tsData) {
    if (remote.tsData.compare(local.tsData) > 0) data = true;
    if (local.tsMeta && remote.tsMeta.compare(local.tsMeta) > 0) meta = true;
    if (local.tsCtype && remote.tsCtype.compare(local.tsCtype) > 0 && remote.tsCtype.compare(remote.tsData) > 0) meta = true;
  } else {
    data = meta = true;
  }
  if (!data && !meta) return null;
  return `${quote(remote.hash)} ${data ? 'd' : ''}${meta ? 'm' : ''}`;
}

/** decode_wanted: a receiver's reply line; no letters means a legacy receiver (data only). */
export function decodeWanted(line: string): { hash: string; data: boolean; meta: boolean } {
  const parts = line.trim().split(/\s+/);
  if (!parts[0]) throw new SsyncProtocolError(`bad wanted line ${JSON.stringify(line.slice(0, 200))}`);
  let hash: string;
  try {
    hash = decodeURIComponent(parts[0]);
  } catch {
    throw new SsyncProtocolError(`bad wanted line ${JSON.stringify(line.slice(0, 200))}`);
  }
  const letters = parts[1] ?? '';
  let data = letters.includes('d');
  const meta = letters.includes('m');
  if (!data && !meta) data = true;
  return { hash, data, meta };
}

/** The head of a PUT, POST or DELETE subrequest: headers in sorted order, then a blank line. */
export function encodeSubrequestHead(method: 'PUT' | 'POST' | 'DELETE', path: string, headers: Record<string, string>): string {
  const lines = [`${method} ${quote(path)}`];
  for (const k of Object.keys(headers).sort()) lines.push(`${k}: ${headers[k]}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/** Python's repr() of a str, as Swift writes the message of an ':ERROR:' line. */
export function pyRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += '\\' + q;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + q;
}

/** The line a receiver sends when the session fails: ':ERROR: <status> <repr(message)>'. */
export function errorLine(status: number, message: string): string {
  return `:ERROR: ${status} ${pyRepr(message)}\n`;
}

/**
 * Reads CRLF- or LF-terminated lines and exact byte counts from a stream of chunks, with a
 * cap on line length and a timeout per read. An oversize line is an error, not a truncation.
 */
export class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  // Chunks not yet joined into buf: joining on arrival would make long bodies quadratic.
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private ended = false;
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(source: AsyncIterable<Uint8Array>) {
    void (async () => {
      try {
        for await (const chunk of source) {
          this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
          this.pendingBytes += chunk.length;
          this.wake();
        }
      } catch (e) {
        this.failure = e as Error;
      }
      this.ended = true;
      this.wake();
    })();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Moves arrived chunks into buf; false when none had arrived. */
  private absorb(): boolean {
    if (!this.pending.length) return false;
    this.buf = this.buf.length ? Buffer.concat([this.buf, ...this.pending]) : this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    return true;
  }

  private async more(timeoutMs: number, context: string): Promise<void> {
    if (this.absorb()) return;
    if (this.failure) throw this.failure;
    if (this.ended) return;
    if (this.absorb()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = timeoutMs > 0 ? setTimeout(() => reject(new SsyncTimeout(`${timeoutMs / 1000} seconds: ${context}`)), timeoutMs) : null;
      this.waiter = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
    });
    this.absorb();
    if (this.failure) throw this.failure;
  }

  /** The next line without its terminator, or null at the end of the stream. */
  async readLine(timeoutMs: number, context: string, maxLen = MAX_LINE): Promise<string | null> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0) {
        if (nl > maxLen) throw new SsyncProtocolError(`${context}: line longer than ${maxLen} bytes`);
        const line = this.buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      if (this.buf.length > maxLen) throw new SsyncProtocolError(`${context}: line longer than ${maxLen} bytes`);
      if (this.absorb()) continue;
      if (this.ended) {
        if (this.failure) throw this.failure;
        if (!this.buf.length) return null;
        const line = this.buf.toString('latin1');
        this.buf = Buffer.alloc(0);
        return line;
      }
      await this.more(timeoutMs, context);
    }
  }

  /** Up to n bytes (fewer only at the end of the stream). */
  async read(n: number, timeoutMs: number, context: string): Promise<Uint8Array> {
    this.absorb();
    while (this.buf.length < n && !(this.ended && !this.pending.length)) await this.more(timeoutMs, context);
    if (this.failure && this.buf.length < n) throw this.failure;
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }
}

export class SsyncTimeout extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SsyncTimeout';
  }
}
