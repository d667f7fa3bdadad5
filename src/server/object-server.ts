// An object server on Swift's EC disk layout, answering the backend requests Swift's proxy,
// reconstructor and replicator send (GET, HEAD, PUT, POST, DELETE, REPLICATE, SSYNC) the way
// Swift 2.30's ObjectController does: same status codes, backend headers, metadata written to
// disk, suffix-hash pickles and SSYNC conversation. Only erasure-coded policies are stored.
//
// HTTP is spoken directly over node:net: node:http's parser refuses the REPLICATE and SSYNC
// methods, and SSYNC needs a full-duplex chunked exchange whose failure mode is a connection
// dropped without the final chunk.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, openSync, readSync, statSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { pino, type DestinationStream, type Logger } from 'pino';
import { BufferPool } from '../replication/buffer-pool.js';
import { REPLICATE_BATCH_BUDGET_MS, REPLICATE_BATCH_HASH_MS, REPLICATE_BATCH_HEADER, REPLICATE_BATCH_MAX_BYTES, replicateBatchParts } from '../replication/replicate.js';
import { OpenFile } from '../swift/afs.js';
import { configTrueValue, ConfigError, OptionReader, readConf, type Conf } from '../swift/conf.js';
import {
  DiskFileCollision,
  DiskFileDeleted,
  DiskFileError,
  DiskFileExpired,
  DiskFileNotExist,
  DiskFileQuarantined,
  ECDiskFileManager,
  type ECDiskFile,
} from '../swift/diskfile.js';
import { invalidateHash, replicatePickle } from '../swift/hashes.js';
import { DiskFileNoSpace, DiskFileXattrNotSupported, type Metadata } from '../swift/metadata.js';
import { loadSwiftConf, type StoragePolicy, type SwiftConf } from '../swift/policies.js';
import { readProcessSettings, type ProcessSettings } from '../swift/priority.js';
import { pyInt } from '../swift/python-values.js';
import { FRAGMEND_VERSION } from '../version.js';
import { ArchiveReadCheck, diskFileCheck } from '../swift/archive-check.js';
import { DEFAULT_RECON_CACHE_PATH, healthcheck, Recon, type HealthcheckOptions, type ReconOptions } from './recon.js';
import { Timestamp } from '../swift/timestamp.js';
import { dumps } from '../swift/pickle.js';
import {
  CountingSemaphore,
  SourceReadError,
  SourceTimeout,
  SsyncReceiver,
  type ByteSource,
  type SsyncSubrequest,
  type SsyncSubresponse,
} from '../replication/ssync-receiver.js';

// ------------------------------------------------------------------------------- constants

/** swob's RESPONSE_REASONS: the reason phrase and the text of the default error page. */
const RESPONSE_REASONS: Record<number, [string, string]> = {
  100: ['Continue', ''],
  200: ['OK', ''],
  201: ['Created', ''],
  202: ['Accepted', 'The request is accepted for processing.'],
  204: ['No Content', ''],
  206: ['Partial Content', ''],
  304: ['Not Modified', ''],
  400: ['Bad Request', 'The server could not comply with the request since it is either malformed or otherwise incorrect.'],
  403: ['Forbidden', 'Access was denied to this resource.'],
  404: ['Not Found', 'The resource could not be found.'],
  405: ['Method Not Allowed', 'The method is not allowed for this resource.'],
  408: ['Request Timeout', 'The server has waited too long for the request to be sent by the client.'],
  409: ['Conflict', 'There was a conflict when trying to complete your request.'],
  411: ['Length Required', 'Content-Length header required.'],
  412: ['Precondition Failed', 'A precondition for this request was not met.'],
  413: ['Request Entity Too Large', 'The body of your request was too large for this server.'],
  414: ['Request URI Too Long', 'The request URI was too long for this server.'],
  416: ['Requested Range Not Satisfiable', 'The Range requested is not available.'],
  422: ['Unprocessable Entity', 'Unable to process the contained instructions'],
  499: ['Client Disconnect', 'The client was disconnected during request.'],
  500: ['Internal Error', 'The server has either erred or is incapable of performing the requested operation.'],
  501: ['Not Implemented', 'The requested method is not implemented by this server.'],
  503: ['Service Unavailable', 'The server is currently unavailable. Please try again at a later time.'],
  507: ['Insufficient Storage', 'There was not enough space to save the resource. Drive: %(drive)s'],
};

const HTML = 'text/html; charset=UTF-8';
const TEXT = 'text/plain';
/** replies held in memory up to this size go out with their head in one write */
const SMALL_REPLY = 65536;

// swift.common.constraints defaults
const MAX_FILE_SIZE = 5368709122;
const MAX_META_NAME_LENGTH = 128;
const MAX_META_VALUE_LENGTH = 256;
const MAX_META_COUNT = 90;
const MAX_META_OVERALL_SIZE = 4096;
const MAX_HEADER_SIZE = 8192;
const MAX_OBJECT_NAME_LENGTH = 1024;

// Request head limits: eventlet's MAX_REQUEST_LINE / MAX_HEADER_LINE (Swift sets the latter to
// max_header_size), and a bound on the whole head and on the header count.
const MAX_REQUEST_LINE = 8192;
const MAX_HEAD = 65536;
const MAX_HEADER_COUNT = 256;
const MAX_CHUNK_LINE = 4096;
/** Bytes buffered from a socket before it is paused until the handler catches up. */
const INPUT_HIGH_WATER = 1 << 20;

const DEFAULT_ALLOWED_HEADERS = [
  'content-disposition',
  'content-encoding',
  'x-delete-at',
  'x-object-manifest',
  'x-static-large-object',
  'cache-control',
  'content-language',
  'expires',
  'x-robots-tag',
];
const RESERVED_DATAFILE_META = new Set(['content-length', 'deleted', 'etag']);
const SWIFT_LOG_LEVELS: Record<string, string> = { DEBUG: 'debug', INFO: 'info', WARNING: 'warn', WARN: 'warn', ERROR: 'error', CRITICAL: 'fatal' };

// ------------------------------------------------------------------------------- configuration

export interface ObjectServerOptions extends ProcessSettings {
  /** Swift's `workers` as written (its default: auto, a process per core); this server runs one. */
  workers: string;
  /** Swift's `servers_per_port` (0: off); not supported either. */
  serversPerPort: number;
  devices: string;
  mountCheck: boolean;
  bindIp: string;
  bindPort: number;
  swiftDir: string;
  /** Concurrent SSYNC sessions (0: unlimited). */
  replicationConcurrency: number;
  replicationConcurrencyPerDevice: number;
  /** Seconds. */
  replicationLockTimeout: number;
  replicationFailureThreshold: number;
  replicationFailureRatio: number;
  /** Seconds to wait for each read from a client; also the idle keep-alive limit. */
  clientTimeout: number;
  nodeTimeout: number;
  connTimeout: number;
  networkChunkSize: number;
  diskChunkSize: number;
  maxUploadTime: number;
  reclaimAge: number;
  commitWindow: number;
  /** Headers stored with the object besides user and system metadata (allowed_headers). */
  allowedHeaders: string[];
  /** replication_server: false serves every verb but REPLICATE and SSYNC; true or unset (null), every verb (Swift 2.30). */
  replicationServer: boolean | null;
  logName: string;
  logLevel: string;
  logRequests: boolean;
  /** fragmend's own: a file for the JSON log instead of stderr. */
  logFile: string | null;
  /** The healthcheck middleware, when the pipeline names it. */
  healthcheck: HealthcheckOptions | null;
  /** The recon middleware, when the pipeline names it. */
  recon: ReconOptions | null;
  /** Filters of the pipeline fragmend does not implement (logged at start). */
  ignoredFilters: string[];
  /** fragmend's own, not read from a conf: the most bytes of answers one batched REPLICATE carries. */
  replicateBatchMaxBytes: number;
  /**
   * fragmend's own, not read from a conf: for how long (ms) a batched REPLICATE also hashes whole
   * the other partitions that need it (REPLICATE_BATCH_HASH_MS).
   */
  replicateBatchHashMs: number;
  /**
   * fragmend's own, not read from a conf: how long (ms) a REPLICATE of a partition waits for the
   * SSYNC sessions into that partition of the device that are under way when it comes.
   */
  replicateWaitMs: number;
}

export const DEFAULT_OBJECT_SERVER_OPTIONS: ObjectServerOptions = {
  // a server made in code is one process; one read from a conf has Swift's default, auto
  workers: '0',
  serversPerPort: 0,
  devices: '/srv/node',
  mountCheck: true,
  bindIp: '0.0.0.0',
  bindPort: 6200,
  swiftDir: '/etc/swift',
  replicationConcurrency: 4,
  replicationConcurrencyPerDevice: 1,
  replicateBatchMaxBytes: REPLICATE_BATCH_MAX_BYTES,
  replicateBatchHashMs: REPLICATE_BATCH_HASH_MS,
  replicateWaitMs: 2000,
  replicationLockTimeout: 15,
  replicationFailureThreshold: 100,
  replicationFailureRatio: 1.0,
  clientTimeout: 60,
  nodeTimeout: 3,
  connTimeout: 0.5,
  networkChunkSize: 65536,
  diskChunkSize: 65536,
  maxUploadTime: 86400,
  reclaimAge: 7 * 24 * 3600,
  commitWindow: 60,
  allowedHeaders: DEFAULT_ALLOWED_HEADERS,
  replicationServer: null,
  logName: 'object-server',
  logLevel: 'INFO',
  logRequests: true,
  logFile: null,
  healthcheck: null,
  recon: null,
  ignoredFilters: [],
  user: 'swift',
  nicePriority: null,
  ioniceClass: null,
  ionicePriority: 0,
};

/** The options of an object-server app section (DEFAULT already merged in), as Swift reads them. */
export function objectServerOptionsFromConf(conf: Conf, where = 'object-server'): ObjectServerOptions {
  const r = new OptionReader(conf, where);
  const d = DEFAULT_OBJECT_SERVER_OPTIONS;
  const allowed = r
    .str('allowed_headers', DEFAULT_ALLOWED_HEADERS.join(','))
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h && !RESERVED_DATAFILE_META.has(h));
  let perDevice: number;
  if (r.has('replication_concurrency_per_device')) perDevice = r.int('replication_concurrency_per_device', 1, { min: 0 });
  else if (r.has('replication_one_per_device')) perDevice = r.bool('replication_one_per_device', true) ? 1 : 0;
  else perDevice = 1;
  const replicationServer = r.has('replication_server') ? r.bool('replication_server', false) : null;
  return {
    workers: r.str('workers', 'auto').trim().toLowerCase() || 'auto',
    serversPerPort: r.int('servers_per_port', 0, { min: 0 }),
    devices: r.str('devices', d.devices),
    mountCheck: r.bool('mount_check', d.mountCheck),
    bindIp: r.str('bind_ip', d.bindIp),
    bindPort: r.int('bind_port', d.bindPort, { min: 0, max: 65535 }),
    swiftDir: r.str('swift_dir', d.swiftDir),
    // Swift: int(conf.get(...) or 4), so an empty value is the default too.
    replicationConcurrency: conf.replication_concurrency ? r.int('replication_concurrency', 4, { min: 0 }) : 4,
    replicationConcurrencyPerDevice: perDevice,
    replicationLockTimeout: r.int('replication_lock_timeout', d.replicationLockTimeout, { min: 0 }),
    replicationFailureThreshold: conf.replication_failure_threshold ? r.int('replication_failure_threshold', 100) : 100,
    replicationFailureRatio: conf.replication_failure_ratio ? r.float('replication_failure_ratio', 1.0) : 1.0,
    clientTimeout: r.float('client_timeout', d.clientTimeout, { min: 0 }),
    nodeTimeout: r.float('node_timeout', d.nodeTimeout, { min: 0 }),
    connTimeout: r.float('conn_timeout', d.connTimeout, { min: 0 }),
    networkChunkSize: r.int('network_chunk_size', d.networkChunkSize, { min: 1 }),
    diskChunkSize: r.int('disk_chunk_size', d.diskChunkSize, { min: 1 }),
    maxUploadTime: r.int('max_upload_time', d.maxUploadTime, { min: 1 }),
    reclaimAge: r.int('reclaim_age', d.reclaimAge),
    commitWindow: r.float('commit_window', d.commitWindow, { min: 0 }),
    allowedHeaders: allowed,
    replicationServer,
    logName: r.str('log_name', d.logName),
    logLevel: r.str('log_level', d.logLevel).toUpperCase(),
    logRequests: r.bool('log_requests', d.logRequests),
    logFile: r.has('log_file') ? r.str('log_file', '') || null : null,
    // applied by the command (fragmend object-server), not by a server started in a process of its own
    ...readProcessSettings(r, where),
    healthcheck: null,
    recon: null,
    ignoredFilters: [],
    replicateBatchMaxBytes: d.replicateBatchMaxBytes,
    replicateBatchHashMs: d.replicateBatchHashMs,
    replicateWaitMs: d.replicateWaitMs,
  };
}

/** Reads object-server.conf (a file or a conf.d directory): [app:object-server] or [object-server]. */
export async function loadObjectServerConf(path: string): Promise<ObjectServerOptions> {
  const all = await readConf(path);
  const section = ['app:object-server', 'object-server'].find((s) => typeof all[s] === 'object');
  if (!section) throw new ConfigError(`Unable to find app:object-server (or object-server) config section in ${path}`);
  return { ...objectServerOptionsFromConf(all[section] as Conf, `${path} [${section}]`), ...pipelineFilters(all, path) };
}

/** What a filter section's `use` (or paste.filter_factory) names: Swift's middleware, by name. */
function middlewareOf(conf: Conf): string | null {
  const use = (conf.use ?? '').trim();
  const egg = /^egg:swift#(\w+)$/.exec(use);
  if (egg) return egg[1]!;
  const factory = /^swift\.common\.middleware\.(\w+):filter_factory$/.exec((conf['paste.filter_factory'] ?? '').trim());
  return factory ? factory[1]! : null;
}

/**
 * The filters of [pipeline:main] (all but its last name, the app), as paste.deploy reads them:
 * each from its [filter:<name>] section, DEFAULT included. healthcheck and recon are served;
 * any other is listed, to be logged. No pipeline section: no filters.
 */
function pipelineFilters(all: Record<string, Conf | string>, path: string): Pick<ObjectServerOptions, 'healthcheck' | 'recon' | 'ignoredFilters'> {
  const out: Pick<ObjectServerOptions, 'healthcheck' | 'recon' | 'ignoredFilters'> = { healthcheck: null, recon: null, ignoredFilters: [] };
  const pipeline = all['pipeline:main'];
  if (typeof pipeline !== 'object') return out;
  const names = (pipeline.pipeline ?? '').split(/\s+/).filter(Boolean);
  for (const name of names.slice(0, -1)) {
    const conf = all[`filter:${name}`];
    if (typeof conf !== 'object') throw new ConfigError(`${path}: [pipeline:main] names ${name}, but there is no [filter:${name}] section`);
    const kind = middlewareOf(conf);
    if (kind === 'healthcheck') out.healthcheck = { disablePath: conf.disable_path ?? '' };
    else if (kind === 'recon') {
      out.recon = { devices: conf.devices ?? '/srv/node', swiftDir: conf.swift_dir ?? '/etc/swift', reconCachePath: conf.recon_cache_path ?? DEFAULT_RECON_CACHE_PATH };
    } else out.ignoredFilters.push(name);
  }
  return out;
}

// ------------------------------------------------------------------------------- small helpers

/** Python's str.title(), which is how WSGI header names become Swift's metadata keys. */
export function pyTitle(s: string): string {
  let out = '';
  let prevCased = false;
  for (const ch of s) {
    const cased = ch.toLowerCase() !== ch.toUpperCase();
    out += cased ? (prevCased ? ch.toLowerCase() : ch.toUpperCase()) : ch;
    prevCased = cased;
  }
  return out;
}

/** A header name as it appears among request.headers.items() in Swift (HTTP_X_FOO -> X-Foo). */
const wsgiHeaderName = (name: string) => pyTitle(name.replace(/_/g, '-'));

const isUserMeta = (key: string) => key.length > 'x-object-meta-'.length && key.toLowerCase().startsWith('x-object-meta-');
const isSysMeta = (key: string) => key.length > 'x-object-sysmeta-'.length && key.toLowerCase().startsWith('x-object-sysmeta-');
const isTransientSysmeta = (key: string) => key.length > 'x-object-transient-sysmeta-'.length && key.toLowerCase().startsWith('x-object-transient-sysmeta-');
const isSysOrUserMeta = (key: string) => isUserMeta(key) || isSysMeta(key);

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function httpDate(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${WEEKDAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} GMT`;
}
function parseHttpDate(s: string): number | null {
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

/** Python's urllib.parse.quote with safe='/', for paths in messages. */
const quotePath = (s: string) =>
  Array.from(Buffer.from(s, 'utf8'))
    .map((b) => (/[A-Za-z0-9_.\-~/]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0')))
    .join('');

/** Percent-decodes a request path to the UTF-8 text Swift works with; null if not valid UTF-8. */
function unquotePath(raw: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) {
      bytes.push(parseInt(raw.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c & 0xff);
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

/** Python's json.dumps of {ts: [fi, ...]}: X-Backend-Fragments (_make_backend_fragments_header). */
function backendFragmentsHeader(fragments: Map<string, number[]>): string | null {
  if (!fragments.size) return null;
  return '{' + [...fragments].map(([ts, fis]) => `${JSON.stringify(ts)}: [${fis.join(', ')}]`).join(', ') + '}';
}

/** Swift's check_utf8 of a WSGI (latin-1) string: non-empty, valid UTF-8, no NUL. */
function isUtf8Text(wsgi: string): boolean {
  if (!wsgi || wsgi.includes('\0')) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(wsgi, 'latin1'));
    return true;
  } catch {
    return false;
  }
}

function stripEtagQuotes(e: string): string {
  const t = e.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

// ------------------------------------------------------------------------------- HTTP plumbing

class RequestHeaders {
  private readonly map = new Map<string, string>();

  constructor(entries: Iterable<[string, string]> = []) {
    for (const [k, v] of entries) this.set(k, v);
  }
  get(name: string): string | undefined {
    return this.map.get(name.toLowerCase());
  }
  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }
  set(name: string, value: string): void {
    this.map.set(name.toLowerCase(), value);
  }
  delete(name: string): void {
    this.map.delete(name.toLowerCase());
  }
  /** Lower-cased names in the order they arrived. */
  entries(): IterableIterator<[string, string]> {
    return this.map.entries();
  }
}

/** Response headers as swob's HeaderKeyDict keeps them: title-cased names, a name keeps its first place. */
class ResponseHeaders {
  private readonly items: Array<[string, string]> = [];
  set(name: string, value: string): void {
    const key = pyTitle(name);
    const i = this.items.findIndex(([k]) => k === key);
    if (i >= 0) this.items[i]![1] = value;
    else this.items.push([key, value]);
  }
  list(): Array<[string, string]> {
    return this.items.map(([k, v]) => [k, v]);
  }
}

class HttpParseError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Bytes from a socket, pulled by whoever handles the current request, with backpressure. */
class SocketInput {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private paused = false;
  private waiter: (() => void) | null = null;

  constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.size += d.length;
      if (this.size >= INPUT_HIGH_WATER && !this.paused) {
        this.paused = true;
        socket.pause();
      }
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  get length(): number {
    return this.size;
  }
  get atEnd(): boolean {
    return this.ended && !this.size;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Waits for more bytes or the end of the stream; false on timeout. */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.ended) return true;
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    return new Promise<boolean>((resolve) => {
      const timer = timeoutMs > 0 ? setTimeout(() => ((this.waiter = null), resolve(false)), timeoutMs) : null;
      this.waiter = () => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
    });
  }

  private flatten(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  indexOf(needle: string): number {
    return this.size ? this.flatten().indexOf(needle) : -1;
  }

  /** Where a byte first occurs within the first `limit` buffered bytes, without copying them. */
  indexOfByte(byte: number, limit: number): number {
    let offset = 0;
    for (const c of this.chunks) {
      const i = c.subarray(0, Math.max(0, limit - offset)).indexOf(byte);
      if (i >= 0) return offset + i;
      offset += c.length;
      if (offset >= limit) break;
    }
    return -1;
  }

  peek(n: number): Buffer {
    return this.flatten().subarray(0, n);
  }

  /** Up to n bytes from the front (exactly n when exact and that many are buffered). */
  take(n: number, exact = false): Buffer {
    if (!this.size || n <= 0) return Buffer.alloc(0);
    if (exact && this.chunks[0]!.length < n) {
      // Join only the chunks that hold the first n bytes.
      let k = 0;
      let have = 0;
      while (have < n && k < this.chunks.length) have += this.chunks[k++]!.length;
      this.chunks.splice(0, k, Buffer.concat(this.chunks.slice(0, k)));
    }
    const first = this.chunks[0]!;
    const out = first.subarray(0, Math.min(n, first.length));
    if (out.length === first.length) this.chunks.shift();
    else this.chunks[0] = first.subarray(out.length);
    this.size -= out.length;
    if (this.paused && this.size < INPUT_HIGH_WATER / 2) {
      this.paused = false;
      this.socket.resume();
    }
    return out;
  }
}

interface IncomingRequest {
  method: string;
  /** The raw path (still %-encoded), without the query string. */
  rawPath: string;
  query: string;
  httpVersion: string;
  headers: RequestHeaders;
  keepAlive: boolean;
  remoteAddr: string;
  body: RequestBody;
}

type Framing = { kind: 'none' } | { kind: 'length'; left: number } | { kind: 'chunked' };

/** A request's body as a ByteSource: Content-Length or chunked framing decoded, 100-continue sent on first read. */
class RequestBody implements ByteSource {
  private chunkLeft = 0;
  private chunkState: 'size' | 'data' | 'crlf' | 'trailers' | 'done';
  private continueSent = false;
  private continueHeaders: Array<[string, string]> = [];
  bytesRead = 0;
  failed = false;

  constructor(
    private readonly input: SocketInput,
    private readonly socket: Socket,
    private framing: Framing,
    private readonly expectContinue: boolean,
    readonly declaredLength: number | null,
  ) {
    this.chunkState = framing.kind === 'chunked' ? 'size' : 'done';
  }

  /** Whether the body has been read to its end (so the connection can carry another request). */
  get complete(): boolean {
    if (this.failed) return false;
    if (this.framing.kind === 'length') return this.framing.left === 0;
    if (this.framing.kind === 'chunked') return this.chunkState === 'done';
    return true;
  }

  /**
   * Sends '100 Continue' (with extra headers) if the client asked for it and it was not sent yet.
   * A second one (again) invites a second chunked sequence, as eventlet allows for the commit
   * phase of a proxy's multiphase PUT.
   */
  sendContinue(headers: Array<[string, string]> = [], again = false): void {
    if (!this.expectContinue || (this.continueSent && !again) || this.socket.destroyed) return;
    // eventlet repeats the first 100 Continue's headers on the second one.
    if (headers.length) this.continueHeaders = headers;
    headers = this.continueHeaders;
    this.continueSent = true;
    if (again && this.framing.kind === 'chunked' && this.chunkState === 'done') this.chunkState = 'size';
    this.socket.write('HTTP/1.1 100 Continue\r\n' + headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n');
  }

  private async need(timeoutMs: number): Promise<void> {
    if (this.input.atEnd) {
      this.failed = true;
      throw new SourceReadError('client disconnected before the end of the request body');
    }
    if (!(await this.input.wait(timeoutMs))) throw new SourceTimeout();
    if (this.input.atEnd) {
      this.failed = true;
      throw new SourceReadError('client disconnected before the end of the request body');
    }
  }

  private async readChunkLine(timeoutMs: number): Promise<string> {
    for (;;) {
      const nl = this.input.indexOfByte(10, MAX_CHUNK_LINE + 1);
      if (nl >= 0) {
        return this.input.take(nl + 1, true).toString('latin1').trim();
      }
      if (this.input.length > MAX_CHUNK_LINE) break;
      await this.need(timeoutMs);
    }
    this.failed = true;
    throw new SourceReadError('chunk header line too long');
  }

  async read(max: number, timeoutMs: number): Promise<Uint8Array | null> {
    if (this.framing.kind !== 'none' && !this.complete) this.sendContinue();
    if (this.failed) throw new SourceReadError('request body unreadable');
    if (this.framing.kind === 'none') return null;
    if (this.framing.kind === 'length') {
      const f = this.framing;
      if (f.left === 0) return null;
      while (!this.input.length) await this.need(timeoutMs);
      const out = this.input.take(Math.min(max, f.left));
      f.left -= out.length;
      this.bytesRead += out.length;
      return out;
    }
    for (;;) {
      if (this.chunkState === 'done') return null;
      if (this.chunkState === 'size') {
        const line = this.readChunkLine(timeoutMs);
        const text = (await line).split(';')[0]!.trim();
        if (!/^[0-9a-fA-F]{1,13}$/.test(text)) {
          this.failed = true;
          throw new SourceReadError(`bad chunk size ${JSON.stringify(text.slice(0, 40))}`);
        }
        this.chunkLeft = parseInt(text, 16);
        this.chunkState = this.chunkLeft ? 'data' : 'trailers';
        continue;
      }
      if (this.chunkState === 'data') {
        while (!this.input.length) await this.need(timeoutMs);
        const out = this.input.take(Math.min(max, this.chunkLeft));
        this.chunkLeft -= out.length;
        this.bytesRead += out.length;
        if (!this.chunkLeft) this.chunkState = 'crlf';
        return out;
      }
      if (this.chunkState === 'crlf') {
        const line = await this.readChunkLine(timeoutMs);
        if (line !== '') {
          this.failed = true;
          throw new SourceReadError('missing CRLF after chunk data');
        }
        this.chunkState = 'size';
        continue;
      }
      // trailers: header lines until an empty one
      const line = await this.readChunkLine(timeoutMs);
      if (line === '') this.chunkState = 'done';
    }
  }
}

/** One response on a connection: status line, headers, a body with Content-Length or chunked. */
class ResponseWriter {
  headersSent = false;
  status = 0;
  bytesSent = 0;
  /** The connection must not carry another request. */
  close = false;
  private chunked = false;
  private isHead = false;

  constructor(private readonly socket: Socket) {}

  get alive(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  /**
   * Sends the status line and headers. A `body` given here (a reply held in memory) goes out
   * in the same write when the reply has a Content-Length: one send, and one wake-up of the
   * client, instead of two. Returns whether it went.
   */
  writeHead(status: number, headers: Array<[string, string]>, opts: { contentLength?: number | null; head?: boolean; close?: boolean } = {}, body?: Uint8Array): boolean {
    this.status = status;
    this.isHead = !!opts.head;
    if (opts.close) this.close = true;
    const lines = [`HTTP/1.1 ${status} ${RESPONSE_REASONS[status]?.[0] ?? 'Unknown'}`];
    for (const [k, v] of headers) {
      // A value Node cannot send as latin-1 would throw later; Swift's values are wsgi (latin-1) strings.
      lines.push(`${k}: ${String(v).replace(/[\r\n]/g, ' ')}`);
    }
    const bodyless = status === 204 || status === 304 || (status >= 100 && status < 200);
    const hasLength = headers.some(([k]) => k.toLowerCase() === 'content-length');
    if (opts.contentLength !== undefined && opts.contentLength !== null) {
      // eventlet sends 'Content-Length: 0' even on a 204.
      if (!hasLength) lines.push(`Content-Length: ${opts.contentLength}`);
    } else if (!bodyless && !this.isHead && !hasLength) {
      this.chunked = true;
      lines.push('Transfer-Encoding: chunked');
    }
    lines.push(`Date: ${httpDate(Date.now() / 1000)}`);
    if (this.close) lines.push('Connection: close');
    // Values are WSGI-style latin-1 strings; anything beyond latin-1 (metadata a py2 Swift wrote
    // as raw UTF-8, decoded on read) goes out as its UTF-8 bytes rather than mangled.
    const text = lines.join('\r\n') + '\r\n\r\n';
    const head = /[^\x00-\xff]/.test(text) ? Buffer.from(text, 'utf8') : Buffer.from(text, 'latin1');
    this.headersSent = true;
    if (body && body.length && !this.chunked && !this.isHead) {
      this.bytesSent += body.length;
      this.socket.write(Buffer.concat([head, body]));
      return true;
    }
    this.socket.write(head);
    return false;
  }

  /**
   * Resolves once the socket has let go of `data` (handed it to the kernel), so its memory may
   * be filled again: a GET reads its whole file through one buffer. Rejects when the client is
   * gone, the socket's write callback reporting it even for data still queued.
   */
  private send(data: Uint8Array | string): Promise<void> {
    if (!this.alive) return Promise.reject(new SourceReadError('client disconnected'));
    return new Promise<void>((resolve, reject) => {
      this.socket.write(data, (err) => (err ? reject(new SourceReadError(`client disconnected: ${err.message}`)) : resolve()));
    });
  }

  /** A body piece (chunked when the response is); resolves once the socket has let go of it. */
  async write(data: Uint8Array): Promise<void> {
    if (this.isHead || !data.length) return;
    this.bytesSent += data.length;
    if (this.chunked) {
      await this.send(`${data.length.toString(16)}\r\n`);
      await this.send(data);
      await this.send('\r\n');
    } else {
      await this.send(data);
    }
  }

  async end(): Promise<void> {
    if (this.chunked && this.alive) await this.send('0\r\n\r\n');
  }
}

/** Closes after the response is out, without resetting a client that is still sending. */
function lingerClose(socket: Socket, graceMs = 2000): void {
  if (socket.destroyed) return;
  socket.end();
  socket.resume();
  socket.on('data', () => undefined);
  const t = setTimeout(() => socket.destroy(), graceMs);
  t.unref();
  socket.once('close', () => clearTimeout(t));
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Parses one request head from the connection; null when the client went away or idled out. */
async function readRequestHead(input: SocketInput, socket: Socket, idleTimeoutMs: number): Promise<IncomingRequest | null> {
  // Stray CRLFs between requests are allowed (RFC 9112 2.2).
  for (;;) {
    while (!input.length) {
      if (input.atEnd) return null;
      if (!(await input.wait(idleTimeoutMs))) return null;
      if (input.atEnd) return null;
    }
    const p = input.peek(2);
    if (p[0] === 13 && p.length < 2) {
      if (!(await input.wait(idleTimeoutMs))) return null;
      continue;
    }
    if (p[0] === 10) input.take(1);
    else if (p[0] === 13 && p[1] === 10) input.take(2);
    else break;
  }
  let end: number;
  let sepLen: number;
  for (;;) {
    const a = input.indexOf('\r\n\r\n');
    const b = input.indexOf('\n\n');
    if (a >= 0 && (b < 0 || a < b)) [end, sepLen] = [a, 4];
    else if (b >= 0) [end, sepLen] = [b, 2];
    else {
      if (input.length > MAX_HEAD) throw new HttpParseError(400, 'Request header too large');
      if (input.indexOfByte(10, MAX_REQUEST_LINE + 1) < 0 && input.length > MAX_REQUEST_LINE) throw new HttpParseError(414, 'Request line too long');
      if (input.atEnd) return null;
      if (!(await input.wait(idleTimeoutMs)) || input.atEnd) {
        if (input.atEnd) return null;
        throw new HttpParseError(408, 'Timed out reading the request head');
      }
      continue;
    }
    break;
  }
  if (end > MAX_HEAD) throw new HttpParseError(400, 'Request header too large');
  const head = input.take(end + sepLen, true).subarray(0, end).toString('latin1');
  const lines = head.split(/\r?\n/);
  const requestLine = lines.shift()!;
  if (requestLine.length > MAX_REQUEST_LINE) throw new HttpParseError(414, 'Request line too long');
  const m = /^([^ ]+) ([^ ]+) HTTP\/(\d)\.(\d)$/.exec(requestLine);
  if (!m || !TOKEN.test(m[1]!)) throw new HttpParseError(400, `Bad request line ${JSON.stringify(requestLine.slice(0, 200))}`);
  const [, method, target, major, minor] = m;
  if (major !== '1') throw new HttpParseError(400, `Unsupported HTTP version ${major}.${minor}`);
  if (lines.length > MAX_HEADER_COUNT) throw new HttpParseError(400, 'Too many headers');
  const headers = new RequestHeaders();
  const contentLengths: string[] = [];
  for (const line of lines) {
    if (line.length > MAX_HEADER_SIZE + 256) throw new HttpParseError(400, 'Header line too long');
    if (/^[ \t]/.test(line)) throw new HttpParseError(400, 'Folded header lines are not accepted');
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) throw new HttpParseError(400, `Bad header line ${JSON.stringify(line.slice(0, 200))}`);
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'content-length') contentLengths.push(value);
    const prev = headers.get(name);
    headers.set(name, prev !== undefined && name.toLowerCase() !== 'content-length' ? `${prev}, ${value}` : value);
  }
  let framing: Framing = { kind: 'none' };
  let declaredLength: number | null = null;
  const te = headers.get('transfer-encoding');
  if (te !== undefined) {
    const codings = te.split(',').map((s) => s.trim().toLowerCase());
    if (codings[codings.length - 1] !== 'chunked') throw new HttpParseError(400, 'Invalid Transfer-Encoding header value');
    framing = { kind: 'chunked' };
  } else if (contentLengths.length) {
    if (!contentLengths.every((v) => /^\d{1,15}$/.test(v)) || new Set(contentLengths).size > 1) throw new HttpParseError(400, 'Invalid Content-Length header value');
    declaredLength = Number(contentLengths[0]);
    if (declaredLength) framing = { kind: 'length', left: declaredLength };
  }
  const conn = (headers.get('connection') ?? '').toLowerCase();
  const keepAlive = minor === '0' ? /\bkeep-alive\b/.test(conn) : !/\bclose\b/.test(conn);
  const q = target!.indexOf('?');
  const expectContinue = (headers.get('expect') ?? '').toLowerCase() === '100-continue' && minor !== '0';
  return {
    method: method!,
    rawPath: q >= 0 ? target!.slice(0, q) : target!,
    query: q >= 0 ? target!.slice(q + 1) : '',
    httpVersion: `${major}.${minor}`,
    headers,
    keepAlive,
    remoteAddr: socket.remoteAddress ?? '-',
    body: new RequestBody(input, socket, framing, expectContinue, declaredLength),
  };
}

// ------------------------------------------------------------------------------- replies

/** A range of a file sent from disk. */
interface FileRange {
  start: number;
  /** Exclusive. */
  end: number;
  /**
   * A read from the file's first byte: checked as Swift's EC reader checks it (each fragment
   * header; the size and MD5 when it reads to the end), and a bad file quarantined and its
   * response cut.
   */
  check?: ArchiveReadCheck;
  /**
   * How far the check reads, past `end` where Swift's reader does: it reads whole
   * disk_chunk_size chunks and checks every byte it read, sent or not. What shows only past the
   * end is checked before the range's last piece goes out, so that piece is not sent (Swift
   * sends it, then quarantines).
   */
  checkTo?: number;
}

/** A file range streamed from disk as a response body. */
interface FileBody extends FileRange {
  fh: OpenFile;
  /** Several ranges: a multipart/byteranges body (start/end are then unused). */
  multipart?: { parts: FileRange[]; boundary: string; contentType: string; size: number };
}

interface Reply {
  status: number;
  headers?: Array<[string, string]>;
  /** Explicit body; absent: Swift's default page for the status (empty for 2xx). */
  body?: string | Uint8Array;
  contentType?: string;
  file?: FileBody;
  /** For the default page of a 507. */
  drive?: string;
  /** A middleware's answer: the app never saw the request, so its access log has no line. */
  fromMiddleware?: boolean;
}

/** The object server's public verbs, sorted as Swift's allowed_methods lists them. */
const CLIENT_METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'];
const ALL_METHODS = [...CLIENT_METHODS, 'REPLICATE', 'SSYNC'];

/** swob's HTTPException: a reply raised from deep inside a handler. */
class ReplyError extends Error {
  constructor(readonly reply: Reply) {
    super(`${reply.status}`);
  }
}

const badRequest = (body: string): ReplyError => new ReplyError({ status: 400, body, contentType: TEXT });

function defaultBody(reply: Reply): Uint8Array {
  if (reply.body !== undefined) return typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body;
  const reason = RESPONSE_REASONS[reply.status];
  if (!reason || !reason[1]) return new Uint8Array(0);
  return Buffer.from(`<html><h1>${reason[0]}</h1><p>${reason[1].replace('%(drive)s', reply.drive ?? 'unknown')}</p></html>`, 'utf8');
}

// ------------------------------------------------------------------------------- the server

/** What an object verb sees, whether it came over HTTP or inside an SSYNC session. */
interface ObjectRequest {
  method: string;
  device: string;
  devPath: string;
  partition: string;
  account: string;
  container: string;
  obj: string;
  policy: StoragePolicy;
  headers: RequestHeaders;
  body: (ByteSource & { declaredLength?: number | null; sendContinue?: (h?: Array<[string, string]>, again?: boolean) => void }) | null;
  /** Whether the body is chunked (no declared length). */
  chunked: boolean;
}

export interface ObjectServerInit extends Partial<ObjectServerOptions> {
  /** Policies and hash prefix/suffix; read from <swiftDir>/swift.conf when absent. */
  swiftConf?: SwiftConf;
  /** A ready logger; otherwise one is made from logLevel/logFile (JSON on stderr by default). */
  logger?: Logger;
  /** Where the JSON log goes when no logger is given. */
  logDestination?: DestinationStream;
}

/** how long after an SSYNC session a partition is not hashed whole ahead of its job (ms) */
const RECENT_SESSION_MS = 60_000;

/** SSYNC sessions and the REPLICATEs that wait for them are matched by device, policy and partition. */
const sessionKey = (device: string, policy: StoragePolicy, partition: string) => `${device}/${policy.index}/${partition}`;

export class ObjectServer {
  readonly options: ObjectServerOptions;
  readonly log: Logger;
  private swiftConf: SwiftConf | null;
  private recon: Recon | null = null;
  private mgr: ECDiskFileManager | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** Buffers GETs read files into, kept between requests. */
  private readonly readBuffers = new BufferPool(8);
  private readonly semaphore: CountingSemaphore | null;
  private readonly allowed: Set<string>;
  private activeSessions = 0;

  constructor(init: ObjectServerInit = {}) {
    const { swiftConf, logger, logDestination, ...rest } = init;
    this.options = { ...DEFAULT_OBJECT_SERVER_OPTIONS, ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) } as ObjectServerOptions;
    this.swiftConf = swiftConf ?? null;
    this.log = logger ?? makeLogger(this.options, logDestination);
    this.semaphore = this.options.replicationConcurrency > 0 ? new CountingSemaphore(this.options.replicationConcurrency) : null;
    this.allowed = new Set(this.options.allowedHeaders.map((h) => h.toLowerCase()).filter((h) => !RESERVED_DATAFILE_META.has(h)));
  }

  /** An ObjectServer configured from an object-server.conf; overrides win over the file. */
  static async fromConfFile(path: string, overrides: ObjectServerInit = {}): Promise<ObjectServer> {
    return new ObjectServer({ ...(await loadObjectServerConf(path)), ...overrides });
  }

  /** SSYNC sessions in progress. */
  get replicationSessions(): number {
    return this.activeSessions;
  }

  get manager(): ECDiskFileManager {
    if (!this.mgr) throw new Error('object server not started');
    return this.mgr;
  }

  async start(): Promise<{ port: number; address: string }> {
    if (this.server) throw new Error('object server already started');
    this.swiftConf ??= await loadSwiftConf(this.options.swiftDir);
    const o = this.options;
    this.mgr = new ECDiskFileManager({
      devices: o.devices,
      mountCheck: o.mountCheck,
      reclaimAge: o.reclaimAge,
      commitWindow: o.commitWindow,
      hashPrefix: this.swiftConf.hashPathPrefix,
      hashSuffix: this.swiftConf.hashPathSuffix,
      warn: (msg) => this.log.warn(msg),
    });
    if (o.recon) this.recon = new Recon(o.recon, this.swiftConf.policies, this.swiftConf.path, this.log);
    if (o.workers !== '0' || o.serversPerPort > 0) {
      this.log.warn(
        `workers = ${o.workers}${o.serversPerPort > 0 ? `, servers_per_port = ${o.serversPerPort}` : ''}: fragmend's object server serves in one process ` +
          '(set workers = 0 to say so; run one server per port for more)',
      );
    }
    for (const name of o.ignoredFilters) this.log.warn(`The pipeline's ${name} filter is not one fragmend serves (healthcheck and recon are); requests go on without it`);
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => void this.serveConnection(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.bindPort, o.bindIp, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    this.log.info({ address: addr.address, port: addr.port, devices: o.devices }, `Started object server on ${addr.address}:${addr.port}`);
    return { port: addr.port, address: addr.address };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.log.info({}, 'Stopped object server');
    this.log.flush?.();
  }

  // ---------------------------------------------------------------- connections

  private async serveConnection(socket: Socket): Promise<void> {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const input = new SocketInput(socket);
    const idleMs = this.options.clientTimeout * 1000;
    try {
      for (;;) {
        let req: IncomingRequest | null;
        try {
          req = await readRequestHead(input, socket, idleMs);
        } catch (e) {
          if (e instanceof HttpParseError) {
            const res = new ResponseWriter(socket);
            const body = Buffer.from(e.message, 'utf8');
            res.writeHead(e.status, [['Content-Type', TEXT]], { contentLength: body.length, close: true });
            await res.write(body).catch(() => undefined);
            this.log.info({ remote_addr: socket.remoteAddress, status: e.status }, `Bad request: ${e.message}`);
          }
          break;
        }
        if (!req) break;
        const res = new ResponseWriter(socket);
        await this.handle(req, res);
        if (!res.alive || res.close || !req.keepAlive || !req.body.complete) break;
      }
    } catch (e) {
      this.log.error({ err: e }, 'ERROR in connection handler');
    } finally {
      lingerClose(socket);
    }
  }

  private async handle(req: IncomingRequest, res: ResponseWriter): Promise<void> {
    const started = process.hrtime.bigint();
    let policyIndex = '-';
    let logged = this.options.logRequests;
    if (!req.keepAlive) res.close = true;
    try {
      const reply = await this.route(req, res, (idx) => (policyIndex = idx));
      if (reply?.fromMiddleware) logged = false;
      if (reply) await this.sendReply(req, res, reply);
    } catch (e) {
      if (res.headersSent) {
        res.close = true;
        if (!(e instanceof SourceReadError || e instanceof DiskFileQuarantined)) this.log.error({ err: e, method: req.method, path: req.rawPath }, `ERROR __call__ error with ${req.method} ${req.rawPath}`);
      } else {
        this.log.error({ err: e, method: req.method, path: req.rawPath }, `ERROR __call__ error with ${req.method} ${req.rawPath}`);
        await this.sendReply(req, res, { status: 500, body: String((e as Error)?.stack ?? e), contentType: TEXT }).catch(() => undefined);
      }
    }
    if (!req.body.complete) res.close = true;
    if (logged) this.accessLog(req, res, Number(process.hrtime.bigint() - started) / 1e9, policyIndex);
  }

  /** Swift's access log line, as fields. */
  private accessLog(req: IncomingRequest, res: ResponseWriter, seconds: number, policyIndex: string): void {
    // replication's lines are at debug: nothing is built for a level that is off
    const replication = req.method === 'REPLICATE' || req.method === 'SSYNC' || req.headers.has('x-backend-replication');
    if (!this.log.isLevelEnabled(replication ? 'debug' : 'info')) return;
    const fields = {
      remote_addr: req.remoteAddr,
      method: req.method,
      path: req.rawPath + (req.query ? `?${req.query}` : ''),
      status: res.status || 499,
      content_length: res.bytesSent || '-',
      referer: req.headers.get('referer') ?? '-',
      txn_id: req.headers.get('x-trans-id') ?? '-',
      user_agent: req.headers.get('user-agent') ?? '-',
      request_time: Number(seconds.toFixed(4)),
      policy_index: policyIndex,
    };
    const msg = `${fields.remote_addr} - - "${fields.method} ${fields.path}" ${fields.status} ${fields.content_length} "${fields.referer}" "${fields.txn_id}" "${fields.user_agent}" ${fields.request_time.toFixed(4)} "-" ${process.pid} ${policyIndex}`;
    if (replication) this.log.debug(fields, msg);
    else this.log.info(fields, msg);
  }

  private async sendReply(req: IncomingRequest, res: ResponseWriter, reply: Reply): Promise<void> {
    const isHead = req.method === 'HEAD';
    const headers: Array<[string, string]> = [];
    const given = reply.headers ?? [];
    if (!given.some(([k]) => k.toLowerCase() === 'content-type')) headers.push(['Content-Type', reply.contentType ?? HTML]);
    headers.push(...given);
    if (reply.file) {
      const f = reply.file;
      res.writeHead(reply.status, headers, { contentLength: f.multipart ? null : f.end - f.start, head: isHead });
      try {
        if (!isHead) await this.streamFile(f, res);
      } finally {
        f.fh.closeSync();
      }
      return;
    }
    // (a middleware's HEAD says how long its GET's body is, as swob does; the app's own says 0)
    const body = isHead && !reply.fromMiddleware ? new Uint8Array(0) : defaultBody(reply);
    const hasLength = given.some(([k]) => k.toLowerCase() === 'content-length');
    const sent = res.writeHead(reply.status, headers, { contentLength: hasLength ? null : body.length, head: isHead }, body.length <= SMALL_REPLY ? body : undefined);
    if (!isHead && !sent) await res.write(body);
    await res.end();
  }

  private async streamFile(f: FileBody, res: ResponseWriter): Promise<void> {
    if (f.multipart) {
      // swob's multi_range_iterator
      const m = f.multipart;
      for (const part of m.parts) {
        await res.write(Buffer.from(`--${m.boundary}\r\nContent-Type: ${m.contentType}\r\nContent-Range: bytes ${part.start}-${part.end - 1}/${m.size}\r\n\r\n`, 'latin1'));
        await this.streamFile({ fh: f.fh, ...part }, res);
        await res.write(Buffer.from('\r\n'));
      }
      await res.write(Buffer.from(`--${m.boundary}--`));
      return;
    }
    // disk_chunk_size is a floor: reads of at least 256 KiB (a fragment of a 4+2 policy's
    // 1 MiB segment) cost a quarter of 64 KiB ones. Plain reads, as Swift's object server
    // makes them (blocking its worker for the read): a read through the thread pool costs
    // twice the CPU of a page-cache copy, and a GET is mostly that copy.
    //
    // Each read lands in a buffer kept for reuse: a fresh one per read made the kernel fault in
    // and zero new pages for every copy, which cost more than the copy itself. The buffer goes
    // back to the server's free list only once the socket has let go of the last piece sent
    // from it; one the socket may still hold (the client went away mid-send) is left to the GC.
    const size = Math.max(this.options.diskChunkSize, 256 * 1024);
    const check = f.check ?? null;
    let pos = f.start;
    const buf = this.readBuffers.take(size);
    let reusable = true;
    try {
      while (pos < f.end) {
        const bytesRead = readSync(f.fh.fd, buf, 0, Math.min(size, f.end - pos), pos);
        if (!bytesRead) {
          // shorter than its metadata says (the check quarantines it, as Swift's reader does)
          await check?.eof();
          break;
        }
        const chunk = buf.subarray(0, bytesRead);
        // Checked before it goes out: as in Swift, the piece that completes a bad fragment is not
        // sent; unlike Swift, which checks the MD5 after sending the whole file, neither is the
        // last piece of a file whose MD5 is wrong, so a client, a proxy or a reconstructor gets a
        // response cut short rather than a whole but wrong one.
        if (check) {
          await check.take(chunk);
          // past the last byte: anything there means the file grew under us
          const past = check.complete ? Buffer.alloc(1) : null;
          if (past && readSync(f.fh.fd, past, 0, 1, f.end) > 0) await check.take(past);
          // the rest of the chunk Swift's reader would have read (and checked) to send the range's end
          if (pos + bytesRead === f.end && f.checkTo !== undefined && f.checkTo > f.end) {
            const more = Buffer.allocUnsafe(f.checkTo - f.end);
            const n = readSync(f.fh.fd, more, 0, more.length, f.end);
            if (n > 0) await check.take(more.subarray(0, n));
          }
        }
        reusable = false;
        await res.write(chunk);
        reusable = true;
        pos += bytesRead;
      }
      if (f.end === f.start) await check?.eof();
    } finally {
      if (reusable) this.readBuffers.give(buf);
    }
  }

  // ---------------------------------------------------------------- routing

  private policyFor(headers: RequestHeaders): StoragePolicy {
    const raw = headers.get('x-backend-storage-policy-index');
    const idx = raw === undefined ? 0 : pyInt(raw);
    const policy = idx === null ? undefined : this.swiftConf!.policies.byIndex(idx);
    if (!policy) throw new ReplyError({ status: 503, body: `No policy with index ${raw ?? 'None'}`, contentType: TEXT });
    if (policy.policyType !== 'erasure_coding') {
      throw badRequest(
        `fragmend stores erasure-coded policies only: policy ${policy.index} (${policy.name}) is a ${policy.policyType} policy` +
          (raw === undefined ? ' (no X-Backend-Storage-Policy-Index header, so policy 0)' : ''),
      );
    }
    return policy;
  }

  /** split_path + validate_device_partition; partitions must be digits. */
  private splitPath(path: string, minsegs: number, maxsegs: number, restWithLast: boolean): Array<string | null> {
    const invalid = () => badRequest(`Invalid path: ${quotePath(path)}`);
    let segs: string[];
    if (restWithLast) {
      segs = splitN(path, '/', maxsegs);
      if (segs[0] || segs.length < minsegs + 1 || segs.length > maxsegs + 1 || segs.slice(1, minsegs + 1).includes('')) throw invalid();
    } else {
      segs = splitN(path, '/', maxsegs + 1);
      const count = segs.length;
      if (segs[0] || count < minsegs + 1 || count > maxsegs + 2 || segs.slice(1, minsegs + 1).includes('') || (count === maxsegs + 2 && segs[maxsegs + 1])) throw invalid();
    }
    const out: Array<string | null> = segs.slice(1, maxsegs + 1);
    while (out.length < maxsegs) out.push(null);
    const [device, partition] = out as [string, string];
    if (!device || device.includes('/') || device === '.' || device === '..') throw badRequest(`Invalid device: ${quotePath(device ?? '')}`);
    if (!partition || !/^\d+$/.test(partition)) throw badRequest(`Invalid partition: ${quotePath(partition ?? '')}`);
    return out;
  }

  private async devPathOf(device: string): Promise<string> {
    const p = await this.manager.getDevPath(device);
    if (!p) throw new ReplyError({ status: 507, drive: device });
    return p;
  }

  private async route(req: IncomingRequest, res: ResponseWriter, notePolicy: (idx: string) => void): Promise<Reply | null> {
    const path = unquotePath(req.rawPath);
    // check_utf8(internal=True): reserved names may hold NULs, but a path may not end with one.
    if (path === null || path.endsWith('\0')) return { status: 412, body: 'Invalid UTF8 or contains NULL' };
    // the pipeline's middlewares, ahead of the app and whatever the method
    if (path === '/healthcheck' && this.options.healthcheck) return { ...healthcheck(this.options.healthcheck), fromMiddleware: true };
    if (path.startsWith('/recon/') && this.recon) return { ...this.recon.answer(path, quotePath(path)), fromMiddleware: true };
    // Swift 2.30's allowed_methods: every public verb, less REPLICATE and SSYNC when
    // replication_server is false (true, or unset, serves them all)
    const allowed = this.options.replicationServer === false ? CLIENT_METHODS : ALL_METHODS;
    if (!allowed.includes(req.method)) return { status: 405 };
    if (req.method === 'OPTIONS') {
      return {
        status: 200,
        headers: [
          ['Allow', allowed.join(', ')],
          ['Server', `object-server/fragmend-${FRAGMEND_VERSION}`],
        ],
      };
    }
    try {
      const policy = this.policyFor(req.headers);
      notePolicy(String(policy.index));
      if (req.method === 'REPLICATE') return await this.replicate(path, policy, req.headers.get(REPLICATE_BATCH_HEADER));
      if (req.method === 'SSYNC') return await this.ssync(req, res, path, policy);
      const [device, partition, account, container, obj] = this.splitPath(path, 5, 5, true) as string[];
      const devPath = await this.devPathOf(device!);
      // eventlet puts an empty CONTENT_TYPE in every WSGI environ, which Swift then refuses as invalid.
      if (!req.headers.has('content-type')) req.headers.set('content-type', '');
      const oreq: ObjectRequest = {
        method: req.method,
        device: device!,
        devPath,
        partition: partition!,
        account: account!,
        container: container!,
        obj: obj!,
        policy,
        headers: req.headers,
        body: req.body,
        chunked: (req.headers.get('transfer-encoding') ?? '').toLowerCase().includes('chunked'),
      };
      return await this.objectVerb(oreq);
    } catch (e) {
      if (e instanceof ReplyError) return e.reply;
      throw e;
    }
  }

  /** GET/HEAD/PUT/POST/DELETE, for HTTP requests and SSYNC subrequests alike. */
  private async objectVerb(req: ObjectRequest): Promise<Reply> {
    try {
      switch (req.method) {
        case 'GET':
        case 'HEAD':
          return await this.getOrHead(req);
        case 'PUT':
          return await this.put(req);
        case 'POST':
          return await this.post(req);
        case 'DELETE':
          return await this.delete(req);
        default:
          return { status: 405 };
      }
    } catch (e) {
      if (e instanceof ReplyError) return e.reply;
      if (e instanceof DiskFileCollision) return { status: 403 };
      if (e instanceof DiskFileXattrNotSupported || e instanceof DiskFileNoSpace) return { status: 507, drive: req.device };
      throw e;
    }
  }

  // ---------------------------------------------------------------- verbs

  private requestTimestamp(req: ObjectRequest): Timestamp {
    const raw = req.headers.get('x-timestamp');
    if (raw === undefined) throw badRequest('Missing X-Timestamp header');
    try {
      return new Timestamp(raw);
    } catch {
      throw badRequest('Invalid X-Timestamp header');
    }
  }

  private diskFile(req: ObjectRequest, opts: { fragIndex?: number | null; fragPrefs?: Array<{ timestamp: string; exclude: number[] }> | null; openExpired?: boolean } = {}): ECDiskFile {
    try {
      return this.manager.diskFile(req.devPath, req.partition, req.account, req.container, req.obj, req.policy, opts);
    } catch (e) {
      if (e instanceof DiskFileError) throw badRequest(e.message);
      throw e;
    }
  }

  private ssyncFragIndex(req: ObjectRequest): number | null {
    const raw = req.headers.get('x-backend-ssync-frag-index');
    if (raw === undefined || raw === '') return null;
    const fi = pyInt(raw);
    if (fi === null) throw badRequest(`Invalid X-Backend-Ssync-Frag-Index ${raw}`);
    return fi;
  }

  private async getOrHead(req: ObjectRequest): Promise<Reply> {
    if (!req.headers.has('x-timestamp')) req.headers.set('x-timestamp', new Timestamp(Date.now() / 1000).normal);
    const reqTs = this.requestTimestamp(req);
    let prefs: Array<{ timestamp: string; exclude: number[] }> | null = null;
    const prefsRaw = req.headers.get('x-backend-fragment-preferences');
    if (prefsRaw !== undefined) {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(prefsRaw);
      } catch {
        // safe_json_loads: unparseable preferences are no preferences
      }
      if (parsed !== null) {
        const ok =
          Array.isArray(parsed) &&
          parsed.every((p) => p && typeof p === 'object' && 'timestamp' in p && Array.isArray((p as { exclude?: unknown }).exclude));
        if (!ok) throw badRequest(`Bad X-Backend-Fragment-Preferences: ${prefsRaw.slice(0, 200)}`);
        prefs = (parsed as Array<{ timestamp: unknown; exclude: unknown[] }>).map((p) => ({ timestamp: String(p.timestamp), exclude: p.exclude as number[] }));
      }
    }
    const df = this.diskFile(req, { fragPrefs: prefs, openExpired: configTrueValue(req.headers.get('x-backend-replication') ?? 'false') });
    try {
      await df.open(reqTs.timestamp);
    } catch (e) {
      if (e instanceof DiskFileNotExist || e instanceof DiskFileQuarantined) {
        const headers: Array<[string, string]> = e instanceof DiskFileDeleted ? [['X-Backend-Timestamp', e.timestamp.internal]] : [];
        return { status: 404, headers };
      }
      throw e;
    }
    const md = df.metadata;
    const fileTs = new Timestamp(md['X-Timestamp']!);
    const size = Number(md['Content-Length']);
    const lastModified = fileTs.ceil();
    const isHead = req.method === 'HEAD';
    // Built in the order swob's Response collects them, so the wire shows Swift's order.
    const h = new ResponseHeaders();
    h.set('Content-Type', md['Content-Type'] ?? 'application/octet-stream');
    for (const [k, v] of Object.entries(md)) {
      if (isSysOrUserMeta(k) || isTransientSysmeta(k) || this.allowed.has(k.toLowerCase())) h.set(k, v);
    }
    const etag = md.ETag ?? '';
    h.set('Etag', `"${etag}"`);
    h.set('Last-Modified', httpDate(lastModified));
    if (!isHead) h.set('Content-Length', String(size));
    if (!isHead && md['Content-Encoding'] !== undefined) h.set('Content-Encoding', md['Content-Encoding']);
    h.set('X-Timestamp', fileTs.normal);
    h.set('X-Backend-Timestamp', fileTs.internal);
    h.set('X-Backend-Data-Timestamp', df.dataTimestamp.internal);
    if (df.durableTimestamp) h.set('X-Backend-Durable-Timestamp', df.durableTimestamp.internal);
    const frags = backendFragmentsHeader(df.fragments);
    if (frags !== null) h.set('X-Backend-Fragments', frags);
    if (isHead) {
      h.set('Content-Length', String(size));
      if (md['Content-Encoding'] !== undefined) h.set('Content-Encoding', md['Content-Encoding']);
    }

    // swob's conditional response, against the etag X-Backend-Etag-Is-At points at, if any.
    const condEtag = resolveEtagIsAt(req.headers, md) ?? etag;
    const conditional = conditionalStatus(req.headers, condEtag, lastModified);
    if (conditional) {
      h.set('Content-Length', '0');
      return { status: conditional, headers: isHead ? h.list() : lengthSecond(h.list()), body: '' };
    }
    if (isHead) return { status: 200, headers: h.list(), body: '' };
    let start = 0;
    let end = size;
    let status = 200;
    let multipart: FileBody['multipart'];
    const range = req.headers.get('range');
    if (range !== undefined && !ignoreRange(req.headers, md)) {
      const ranges = parseRange(range, size);
      if (ranges && ranges.length === 0) {
        h.set('Content-Range', `bytes */${size}`);
        const page = defaultBody({ status: 416 });
        h.set('Content-Length', String(page.length));
        return { status: 416, headers: lengthSecond(h.list()), body: page };
      }
      if (ranges && ranges.length === 1 && size > 0) {
        [start, end] = ranges[0]!;
        status = 206;
        h.set('Content-Range', `bytes ${start}-${end - 1}/${size}`);
        h.set('Content-Length', String(end - start));
      } else if (ranges && ranges.length > 1 && size > 0) {
        status = 206;
        const contentType = md['Content-Type'] ?? 'application/octet-stream';
        const boundary = randomBytes(16).toString('hex');
        let total = 0;
        for (const [s0, e0] of ranges) {
          total += 2 + boundary.length + 2 + 'Content-Type: '.length + Buffer.byteLength(contentType) + 2 + 'Content-Range: '.length + 2 + 2;
          total += `bytes ${s0}-${e0 - 1}/${size}`.length + (e0 - s0) + 2;
        }
        total += boundary.length + 4;
        h.set('Content-Type', `multipart/byteranges;boundary=${boundary}`);
        h.set('Content-Length', String(total));
        multipart = { parts: ranges.map(([s0, e0], i) => this.checkedRange(df, s0, e0, size, i === ranges.length - 1)), boundary, contentType, size };
      }
    }
    const headers = h.list();
    let fh: OpenFile;
    try {
      // a plain open, as the reads that follow are plain reads
      fh = new OpenFile(openSync(df.dataFile!, 'r'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { status: 404 };
      throw e;
    }
    const file: FileBody = { fh, ...(multipart ? { start, end } : this.checkedRange(df, start, end, size, true)), multipart };
    // A whole archive's MD5 is checked before its last byte goes out (the response is cut
    // otherwise): the reader need not hash it again.
    if (file.check?.checksEtag) headers.push(['X-Backend-Archive-Checked', 'etag']);
    return { status, headers, file };
  }

  /**
   * A range of an archive with the checks Swift's EC reader makes of it. A range that starts at
   * the first byte has its fragment headers checked, as far as the reader's disk_chunk_size reads
   * go; one that reads to the end and is the last of the response (a whole GET, `bytes=0-`) also
   * has its last fragment, its size and its MD5 checked, as the reader checks them on closing. A
   * range that starts elsewhere is not checked.
   */
  private checkedRange(df: ECDiskFile, start: number, end: number, size: number, last: boolean): FileRange {
    if (start !== 0) return { start, end };
    const toEnd = end === size;
    const check = new ArchiveReadCheck({ ...diskFileCheck(df, this.log, { md5: toEnd && last }), endChecks: toEnd && last });
    // Swift's reader stops after the chunk that goes past the range's end: one that ends exactly
    // there is followed by one more read
    const chunk = this.options.diskChunkSize;
    return { start, end, check, checkTo: toEnd ? size : Math.min(size, (Math.floor(end / chunk) + 1) * chunk) };
  }

  /** check_object_creation and the metadata limits of check_metadata. */
  private checkObjectCreation(req: ObjectRequest, reqTs: Timestamp): void {
    const cl = req.headers.get('content-length');
    const length = req.chunked ? null : cl === undefined ? null : pyInt(cl);
    if (!req.chunked && cl !== undefined && length === null) throw badRequest('Invalid Content-Length header value');
    if (length !== null && length > MAX_FILE_SIZE) throw new ReplyError({ status: 413, body: 'Your request is too large.', contentType: TEXT });
    if (length === null && !req.chunked) throw new ReplyError({ status: 411, body: 'Missing Content-Length header.', contentType: TEXT });
    if (req.obj.length > MAX_OBJECT_NAME_LENGTH) throw badRequest(`Object name length of ${req.obj.length} longer than ${MAX_OBJECT_NAME_LENGTH}`);
    if (!req.headers.has('content-type')) throw badRequest('No content type');
    checkDeleteHeaders(req.headers, reqTs);
    if (!isUtf8Text(req.headers.get('content-type')!)) throw badRequest('Invalid Content-Type');
    let count = 0;
    let total = 0;
    for (const [lower, value] of req.headers.entries()) {
      // Swift sees the names as WSGI gives them: title-cased.
      const key = wsgiHeaderName(lower);
      if (value.length > MAX_HEADER_SIZE) throw badRequest(`Header value too long: ${key.slice(0, MAX_META_NAME_LENGTH)}`);
      if (!lower.startsWith('x-object-meta-')) continue;
      const name = key.slice('x-object-meta-'.length);
      if (!name) throw badRequest('Metadata name cannot be empty');
      count++;
      total += name.length + value.length;
      if (name.length > MAX_META_NAME_LENGTH) throw badRequest(`Metadata name too long: x-object-meta-${name}`);
      if (value.length > MAX_META_VALUE_LENGTH) throw badRequest(`Metadata value longer than ${MAX_META_VALUE_LENGTH}: x-object-meta-${name}`);
      if (count > MAX_META_COUNT) throw badRequest(`Too many metadata items; max ${MAX_META_COUNT}`);
      if (total > MAX_META_OVERALL_SIZE) throw badRequest(`Total metadata too large; max ${MAX_META_OVERALL_SIZE}`);
    }
  }

  /** The headers X-Backend-Replication-Headers and allowed_headers make the server keep verbatim. */
  private copyHeaders(req: ObjectRequest, metadata: Metadata): void {
    const names = [...(req.headers.get('x-backend-replication-headers') ?? '').split(/\s+/).filter(Boolean), ...this.allowed];
    for (const name of names) {
      const v = req.headers.get(name);
      if (v !== undefined) metadata[pyTitle(name)] = v;
    }
  }

  private async put(req: ObjectRequest): Promise<Reply> {
    const reqTs = this.requestTimestamp(req);
    this.checkObjectCreation(req, reqTs);
    const fsize = req.chunked ? (req.headers.has('x-backend-obj-content-length') ? pyInt(req.headers.get('x-backend-obj-content-length')!) : null) : pyInt(req.headers.get('content-length') ?? '0');
    if (req.headers.has('x-backend-obj-content-length') && fsize === null) throw badRequest('Invalid X-Backend-Obj-Content-Length');
    const df = this.diskFile(req, { fragIndex: this.ssyncFragIndex(req) });
    let origMetadata: Metadata = {};
    let origTs: Timestamp = new Timestamp(0);
    try {
      await df.open(reqTs.timestamp);
      origMetadata = df.metadata;
      origTs = df.dataTimestamp;
    } catch (e) {
      if (e instanceof DiskFileDeleted) origTs = e.timestamp;
      else if (!(e instanceof DiskFileNotExist || e instanceof DiskFileQuarantined)) throw e;
    }
    const ifNoneMatch = req.headers.get('if-none-match');
    if (ifNoneMatch !== undefined && Object.keys(origMetadata).length) {
      const tags = ifNoneMatch.split(',').map(stripEtagQuotes);
      if (tags.includes('*') || tags.includes(origMetadata.ETag ?? '\0')) return { status: 412 };
    }
    if (origTs.compare(reqTs) >= 0) return { status: 409, headers: [['X-Backend-Timestamp', origTs.internal]] };

    const mime = multiphaseState(req);
    const writer = df.writer(fsize ?? undefined);
    try {
      let input: ByteSource = req.body ?? { read: async () => null };
      let mimeDocs: MimeDocuments | null = null;
      if (mime) {
        const cont: Array<[string, string]> = [];
        if (mime.commit) cont.push(['X-Obj-Multiphase-Commit', 'yes']);
        if (mime.footer) cont.push(['X-Obj-Metadata-Footer', 'yes']);
        req.body?.sendContinue?.(cont);
        mimeDocs = new MimeDocuments(input, mime.boundary, this.options.networkChunkSize, this.options.clientTimeout * 1000);
        const first = await mimeDocs.next();
        if (!first) throw badRequest('no object body MIME document');
        input = first.body;
      }
      await writer.open();
      const md5 = createHash('md5');
      let uploaded = 0;
      const deadline = Date.now() + this.options.maxUploadTime * 1000;
      for (;;) {
        const chunk = await input.read(this.options.networkChunkSize, this.options.clientTimeout * 1000);
        if (!chunk) break;
        if (Date.now() > deadline) return { status: 408 };
        await writer.write(chunk);
        md5.update(chunk);
        uploaded += chunk.length;
      }
      if (fsize !== null && fsize !== uploaded) return { status: 499 };
      const etag = md5.digest('hex');
      const metadata: Metadata = {
        'X-Timestamp': reqTs.internal,
        'Content-Type': req.headers.get('content-type')!,
        'Content-Length': String(uploaded),
        ETag: etag,
      };
      for (const [k, v] of req.headers.entries()) {
        if (isSysOrUserMeta(k) || isTransientSysmeta(k)) metadata[wsgiHeaderName(k)] = v;
      }
      this.copyHeaders(req, metadata);
      let footers = new RequestHeaders();
      if (mimeDocs && mime?.footer) {
        footers = await readMetadataFooter(mimeDocs);
        const fe = (footers.get('etag') ?? '').toLowerCase();
        footers.delete('etag');
        if (fe) footers.set('etag', fe);
      }
      for (const [k, v] of footers.entries()) {
        if (k !== 'etag' && (isSysOrUserMeta(k) || isTransientSysmeta(k))) metadata[wsgiHeaderName(k)] = v;
      }
      const received = stripEtagQuotes(footers.get('etag') ?? req.headers.get('etag') ?? '').toLowerCase();
      if (received && received !== metadata.ETag) return { status: 422 };
      if (metadata['X-Object-Sysmeta-Ec-Frag-Index'] === undefined && df.fragIndex === null) {
        throw badRequest('An erasure-coded PUT needs X-Object-Sysmeta-Ec-Frag-Index (or X-Backend-Ssync-Frag-Index)');
      }
      const noCommit = configTrueValue(req.headers.get('x-backend-no-commit') ?? 'false');
      const secondPhase = !!(mimeDocs && mime?.commit);
      // Without a second phase to wait for, the fragment is written durable at once.
      const durableNow = !noCommit && !secondPhase;
      try {
        await writer.put(metadata, '.data', { durable: durableNow, contentMd5: etag });
      } catch (e) {
        if (e instanceof DiskFileError && /fragment index/i.test(e.message)) throw badRequest(e.message);
        throw e;
      }
      if (mimeDocs && mime?.commit) {
        // The proxy ends the first phase with an empty chunk and waits for a second 100 Continue.
        await mimeDocs.endPhase();
        req.body?.sendContinue?.([], true);
        mimeDocs.resume();
        if (!(await readPutCommit(mimeDocs))) return { status: 500 };
      }
      if (!noCommit && secondPhase) await writer.commit(reqTs);
      if (mimeDocs) await mimeDocs.drain();
      return { status: 201, headers: [['Etag', `"${etag}"`]] };
    } catch (e) {
      if (e instanceof SourceReadError) return { status: 499 };
      if (e instanceof SourceTimeout) return { status: 408 };
      throw e;
    } finally {
      await writer.close();
    }
  }

  private async post(req: ObjectRequest): Promise<Reply> {
    const reqTs = this.requestTimestamp(req);
    const rawDeleteAt = req.headers.get('x-delete-at');
    const newDeleteAt = rawDeleteAt ? pyInt(rawDeleteAt) : 0;
    if (newDeleteAt === null) throw badRequest('Non-integer X-Delete-At');
    if (newDeleteAt && newDeleteAt < reqTs.timestamp) return { status: 400, body: 'X-Delete-At in past', contentType: TEXT };
    const df = this.diskFile(req, { openExpired: configTrueValue(req.headers.get('x-backend-replication') ?? 'false') });
    try {
      await df.open(reqTs.timestamp);
    } catch (e) {
      if (e instanceof DiskFileNotExist || e instanceof DiskFileQuarantined) return { status: 404 };
      throw e;
    }
    const orig = df.metadata;
    const origTs = new Timestamp(orig['X-Timestamp'] ?? 0);
    const origCtypeTs = new Timestamp(orig['Content-Type-Timestamp'] ?? df.datafileMetadata['X-Timestamp']!);
    const reqCtype = req.headers.get('content-type');
    const reqCtypeTs = new Timestamp(reqCtype ? (req.headers.get('content-type-timestamp') ?? reqTs.internal) : '0');
    if (origTs.compare(reqTs) >= 0 && origCtypeTs.compare(reqCtypeTs) >= 0) {
      return { status: 409, headers: [['X-Backend-Timestamp', origTs.internal]] };
    }
    let metadata: Metadata;
    if (reqTs.compare(origTs) > 0) {
      metadata = { 'X-Timestamp': reqTs.internal };
      for (const [k, v] of req.headers.entries()) {
        if (isUserMeta(k) || isTransientSysmeta(k)) metadata[wsgiHeaderName(k)] = v;
      }
      this.copyHeaders(req, metadata);
    } else {
      metadata = { ...df.metafileMetadata };
    }
    let ctype: { 'Content-Type': string; 'Content-Type-Timestamp': string };
    if (reqCtypeTs.compare(origCtypeTs) > 0) {
      ctype = { 'Content-Type': reqCtype!, 'Content-Type-Timestamp': reqCtypeTs.internal };
      Object.assign(metadata, ctype);
    } else {
      ctype = { 'Content-Type': df.contentType ?? '', 'Content-Type-Timestamp': origCtypeTs.internal };
      if (!origCtypeTs.equals(df.dataTimestamp)) Object.assign(metadata, ctype);
    }
    await df.writeMetadata(metadata);
    const headers: Array<[string, string]> = [['X-Backend-Content-Type', ctype['Content-Type']]];
    for (const [k, v] of Object.entries(orig)) if (isSysMeta(k)) headers.push([k, v]);
    return { status: 202, headers };
  }

  private async delete(req: ObjectRequest): Promise<Reply> {
    const reqTs = this.requestTimestamp(req);
    const df = this.diskFile(req);
    let origTs: Timestamp | null;
    let origMd: Metadata = {};
    let status: number;
    try {
      await df.open(reqTs.timestamp);
      origTs = df.dataTimestamp;
      origMd = df.metadata;
      status = origTs.compare(reqTs) < 0 ? 204 : 409;
    } catch (e) {
      if (e instanceof DiskFileExpired) {
        origTs = e.timestamp;
        origMd = e.metadata;
      } else if (e instanceof DiskFileDeleted) {
        origTs = e.timestamp;
      } else if (e instanceof DiskFileNotExist || e instanceof DiskFileQuarantined) {
        origTs = null;
      } else throw e;
      status = 404;
    }
    const responseTs = origTs && origTs.compare(reqTs) > 0 ? origTs : reqTs;
    const ifDeleteAt = req.headers.get('x-if-delete-at');
    if (ifDeleteAt !== undefined) {
      let want: Timestamp;
      try {
        want = new Timestamp(ifDeleteAt);
      } catch {
        return { status: 400, body: 'Bad X-If-Delete-At header value' };
      }
      if (!origTs || origTs.timestamp === 0) return { status: 404 };
      if (origTs.compare(reqTs) >= 0) return { status: 409 };
      if (!new Timestamp(origMd['X-Delete-At'] || 0).equals(want)) return { status: 412, body: 'X-If-Delete-At and X-Delete-At do not match' };
      status = 204;
    }
    if (!origTs || origTs.compare(reqTs) < 0) await df.delete(reqTs);
    return {
      status,
      headers: [
        ['X-Backend-Timestamp', responseTs.internal],
        ['X-Backend-Content-Type', origMd['Content-Type'] ?? ''],
      ],
    };
  }

  /**
   * SSYNC sessions under way (queued for their device or holding it), by device, policy and
   * partition: how many, and the REPLICATEs waiting for them to end.
   */
  private readonly partSessions = new Map<string, { n: number; waiters: Array<() => void> }>();
  /**
   * When the last SSYNC session into a partition ended (by device, policy and partition), for
   * those of the last RECENT_SESSION_MS: a batched REPLICATE does not hash them whole ahead of
   * their jobs (their hashes are likely still changing, as on a device being restored).
   */
  private readonly recentSessions = new Map<string, number>();

  /** Counts a session in; the function returned counts it out. */
  private sessionStarted(key: string): () => void {
    let s = this.partSessions.get(key);
    if (!s) this.partSessions.set(key, (s = { n: 0, waiters: [] }));
    s.n++;
    const sessions = s;
    return () => {
      this.markRecent(key);
      if (--sessions.n > 0) return;
      this.partSessions.delete(key);
      for (const w of sessions.waiters.splice(0)) w();
    };
  }

  /** A session into the partition ended now (see recentSessions). */
  private markRecent(key: string): void {
    const now = Date.now();
    this.recentSessions.delete(key);
    this.recentSessions.set(key, now);
    // oldest first (each key is re-inserted at its end): forget those past the window
    for (const [k, t] of this.recentSessions) {
      if (now - t < RECENT_SESSION_MS) break;
      this.recentSessions.delete(k);
    }
  }

  /** Whether SSYNC sessions are pushing into the partition, or were in the last RECENT_SESSION_MS. */
  private receivedLately(key: string): boolean {
    if (this.partSessions.has(key)) return true;
    const t = this.recentSessions.get(key);
    return t !== undefined && Date.now() - t < RECENT_SESSION_MS;
  }

  /**
   * Waits (replicateWaitMs at most) for the SSYNC sessions into the partition that are under
   * way. On a device being restored, the partition's partners all find it lacking, and each
   * pushes to it; the device takes one session at a time, so the later ones wait their turn and
   * then find everything already there, having begun their rebuilds for nothing. A partner's
   * REPLICATE that comes while such a session is under way is answered once it has ended, with
   * the hashes it leaves; a session that lingers delays the answer by replicateWaitMs at most.
   */
  private async sessionsEnded(key: string): Promise<void> {
    const s = this.partSessions.get(key);
    if (!s || this.options.replicateWaitMs <= 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, this.options.replicateWaitMs);
      s.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private async replicate(path: string, policy: StoragePolicy, batch?: string | null): Promise<Reply> {
    const [device, partition, suffixParts] = this.splitPath(path, 2, 3, true) as [string, string, string | null];
    const devPath = await this.devPathOf(device);
    if (suffixParts) {
      // skip_rehash: the suffixes are only marked for the next rehash; the answer is None.
      const partPath = this.manager.partPath(devPath, policy, partition);
      for (const s of suffixParts.split('-')) if (/^[0-9a-f]{3}$/.test(s)) await invalidateHash(join(partPath, s));
      return { status: 200, body: dumps(null, { protocol: 2 }), contentType: HTML };
    }
    await this.sessionsEnded(sessionKey(device, policy, partition));
    const parts = batch ? replicateBatchParts(partition, batch) : null;
    if (!parts) return { status: 200, body: (await this.partitionHashes(devPath, policy, partition, false))!, contentType: HTML };
    // A fragmend peer's REPLICATE asking for more partitions of the device (see
    // src/replication/replicate.ts): each one's answer as its own REPLICATE would be, framed.
    // A partition that needs hashing whole (no valid hashes.pkl) is hashed as its own REPLICATE
    // would hash it for the first replicateBatchHashMs, unless SSYNC sessions pushed into it
    // lately; the others are answered only from what is cheap (a partition whose hashes.pkl is
    // valid, or one not here). Only for so long and only up to so many bytes: what is left out is
    // asked for one by one by the peer, each then paying for its own hashing as Swift's REPLICATE
    // does.
    const pieces: Uint8Array[] = [];
    const start = Date.now();
    const until = start + REPLICATE_BATCH_BUDGET_MS;
    const hashUntil = start + this.options.replicateBatchHashMs;
    let answered = 0;
    let bytes = 0;
    for (const [i, p] of parts.entries()) {
      if (i > 0 && Date.now() > until) break;
      const body = await this.partitionHashes(devPath, policy, p, i > 0 && (Date.now() >= hashUntil || this.receivedLately(sessionKey(device, policy, p))));
      if (!body) continue;
      const head = Buffer.from(`${p} ${body.length}\n`, 'latin1');
      if (i > 0 && bytes + head.length + body.length > this.options.replicateBatchMaxBytes) break;
      bytes += head.length + body.length;
      pieces.push(head, body);
      answered++;
    }
    return { status: 200, headers: [[REPLICATE_BATCH_HEADER, String(answered)]], body: Buffer.concat(pieces), contentType: HTML };
  }

  /**
   * A partition's REPLICATE answer: its suffix hashes (an empty dict when it is not here). With
   * cheapOnly, null where its hashes.pkl is missing or invalid (the whole partition to hash).
   */
  private async partitionHashes(devPath: string, policy: StoragePolicy, partition: string, cheapOnly: boolean): Promise<Uint8Array | null> {
    const partPath = this.manager.partPath(devPath, policy, partition);
    if (!statSync(partPath, { throwIfNoEntry: false })) return replicatePickle(new Map());
    const got = cheapOnly ? await this.manager.cachedHashes(devPath, partition, policy) : await this.manager.getHashes(devPath, partition, policy, []);
    return got ? replicatePickle(got.hashes) : null;
  }

  private async ssync(req: IncomingRequest, res: ResponseWriter, path: string, policy: StoragePolicy): Promise<Reply | null> {
    const [device, partition] = this.splitPath(path, 2, 2, false) as [string, string];
    let fragIndex: number | null = null;
    const rawFi = req.headers.get('x-backend-ssync-frag-index');
    if (rawFi) {
      const fi = pyInt(rawFi);
      if (fi === null) throw badRequest(`Invalid X-Backend-Ssync-Frag-Index ${JSON.stringify(rawFi)}`);
      const n = policy.ec!.ndata + policy.ec!.nparity;
      if (fi < 0 || fi >= n) throw badRequest(`Invalid X-Backend-Ssync-Frag-Index ${fi}: must be 0 to ${n - 1} for policy ${policy.index}`);
      fragIndex = fi;
    }
    const devPath = await this.devPathOf(device);
    const o = this.options;
    const receiver = new SsyncReceiver(
      {
        manager: this.manager,
        device,
        devPath,
        partition,
        policy,
        fragIndex,
        semaphore: this.semaphore,
        clientTimeout: o.clientTimeout,
        networkChunkSize: o.networkChunkSize,
        replicationLockTimeout: o.replicationLockTimeout,
        replicationConcurrencyPerDevice: o.replicationConcurrencyPerDevice,
        failureThreshold: o.replicationFailureThreshold,
        failureRatio: o.replicationFailureRatio,
        log: this.log,
        remoteAddr: req.remoteAddr,
        apply: (sub) => this.ssyncSubrequest(sub, device, devPath, partition, policy),
      },
      req.body,
    );
    res.writeHead(200, [
      ['Content-Type', HTML],
      ['X-Backend-Accept-No-Commit', 'True'],
    ]);
    this.activeSessions++;
    const done = this.sessionStarted(sessionKey(device, policy, partition));
    const gen = receiver.run();
    try {
      for (;;) {
        const { value, done } = await gen.next();
        if (done) break;
        try {
          await res.write(value);
        } catch {
          break;
        }
      }
    } finally {
      // Releases the locks and the semaphore if the client went away mid-session.
      await gen.return(undefined).catch(() => undefined);
      this.activeSessions--;
      done();
    }
    if (receiver.disconnect) {
      // Like Swift, the connection is dropped without the final chunk: the sender must not
      // mistake a failed session for a finished one.
      res.close = true;
    } else {
      await res.end().catch(() => undefined);
      res.close = true;
    }
    return null;
  }

  /** An SSYNC subrequest through the same verbs as HTTP requests, with the session's device and partition. */
  private async ssyncSubrequest(sub: SsyncSubrequest, device: string, devPath: string, partition: string, policy: StoragePolicy): Promise<SsyncSubresponse> {
    const path = unquotePath(`/${encodeURIComponent(device)}/${partition}${sub.path}`);
    if (path === null || path.endsWith('\0')) return { status: 412, body: 'Invalid UTF8 or contains NULL' };
    let parts: Array<string | null>;
    try {
      parts = this.splitPath(path, 5, 5, true);
    } catch (e) {
      if (e instanceof ReplyError) return { status: e.reply.status, body: String(e.reply.body ?? '') };
      throw e;
    }
    const [, , account, container, obj] = parts as string[];
    const headers = new RequestHeaders(sub.headers);
    const req: ObjectRequest = {
      method: sub.method,
      device,
      devPath,
      partition,
      account: account!,
      container: container!,
      obj: obj!,
      policy,
      headers,
      body: sub.body ?? { read: async () => null },
      chunked: false,
    };
    const reply = await this.objectVerb(req);
    const body = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body).toString('utf8');
    this.log.debug({ status: reply.status, method: sub.method, path: sub.path }, `ssync subrequest ${sub.method} ${sub.path}: ${reply.status}`);
    return { status: reply.status, body };
  }
}

/**
 * A GET whose status swob changes while answering (304, 412, 416) goes through
 * request.get_response a second time in Swift, which leaves Content-Length second.
 */
function lengthSecond(list: Array<[string, string]>): Array<[string, string]> {
  const i = list.findIndex(([k]) => k === 'Content-Length');
  if (i > 1) list.splice(1, 0, ...list.splice(i, 1));
  return list;
}

function splitN(s: string, sep: string, max: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < max) {
    const i = rest.indexOf(sep);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}

function makeLogger(o: ObjectServerOptions, destination?: DestinationStream): Logger {
  const level = SWIFT_LOG_LEVELS[o.logLevel] ?? 'info';
  const dest = destination ?? (o.logFile ? createWriteStream(o.logFile, { flags: 'a' }) : pino.destination({ dest: 2, sync: false }));
  return pino({ name: o.logName, level, base: { pid: process.pid, server: 'object-server' } }, dest);
}

/** check_delete_headers: X-Delete-After becomes X-Delete-At; a past X-Delete-At is refused. */
function checkDeleteHeaders(headers: RequestHeaders, reqTs: Timestamp): void {
  const now = reqTs.timestamp;
  const after = headers.get('x-delete-after');
  if (after !== undefined) {
    const n = pyInt(after);
    if (n === null) throw badRequest('Non-integer X-Delete-After');
    const at = Math.trunc(now + n);
    if (at <= now) throw badRequest('X-Delete-After in past');
    headers.set('x-delete-at', String(at).padStart(10, '0'));
    headers.delete('x-delete-after');
  }
  const at = headers.get('x-delete-at');
  if (at !== undefined) {
    const n = pyInt(at);
    if (n === null) throw badRequest('Non-integer X-Delete-At');
    if (n <= now && !configTrueValue(headers.get('x-backend-replication') ?? 'f')) throw badRequest('X-Delete-At in past');
  }
}

function resolveEtagIsAt(headers: RequestHeaders, md: Metadata): string | undefined {
  const names = (headers.get('x-backend-etag-is-at') ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const lower = new Map(Object.entries(md).map(([k, v]) => [k.toLowerCase(), v]));
  for (const n of names) if (lower.has(n)) return lower.get(n);
  return undefined;
}

function ignoreRange(headers: RequestHeaders, md: Metadata): boolean {
  const names = new Set((headers.get('x-backend-ignore-range-if-metadata-present') ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
  return Object.keys(md).some((k) => names.has(k.toLowerCase()));
}

/** 304 or 412 from If-Match / If-None-Match / If-(Un)Modified-Since, or null. */
function conditionalStatus(headers: RequestHeaders, etag: string, lastModified: number): number | null {
  const im = headers.get('if-match');
  if (im !== undefined) {
    const tags = im.split(',').map(stripEtagQuotes);
    if (!tags.includes('*') && !tags.includes(etag)) return 412;
  }
  const inm = headers.get('if-none-match');
  if (inm !== undefined) {
    const tags = inm.split(',').map(stripEtagQuotes);
    if (tags.includes('*') || tags.includes(etag)) return 304;
  }
  const ius = headers.get('if-unmodified-since');
  if (ius !== undefined) {
    const t = parseHttpDate(ius);
    if (t !== null && lastModified > t) return 412;
  }
  const ims = headers.get('if-modified-since');
  if (ims !== undefined && inm === undefined) {
    const t = parseHttpDate(ims);
    if (t !== null && lastModified <= t) return 304;
  }
  return null;
}

/**
 * swob's Range and ranges_for_length: null when the header is not a valid byte range (it is then
 * ignored), [] when nothing is satisfiable or the ranges are egregious (416).
 */
function parseRange(value: string, length: number): Array<[number, number]> | null {
  const v = value.replace(/ /g, '');
  if (!v || !v.toLowerCase().startsWith('bytes=')) return null;
  const specs: Array<[number | null, number | null]> = [];
  for (const rng of v.slice(6).split(',')) {
    const dash = rng.indexOf('-');
    if (dash < 0) return null;
    const a = rng.slice(0, dash);
    const b = rng.slice(dash + 1);
    let start: number | null = null;
    if (a) {
      start = pyInt(a);
      if (start === null) return null;
    }
    let end: number | null = null;
    if (b) {
      if (!/^\d+$/.test(b)) return null;
      end = Number(b);
      if (start !== null && end < start) return null;
    } else if (start === null) {
      return null;
    }
    specs.push([start, end]);
  }
  if (!specs.length) return null;
  const out: Array<[number, number]> = [];
  for (const [begin, end] of specs) {
    if (begin === null) {
      if (end === 0) continue;
      out.push(end! > length ? [0, length] : [length - end!, length]);
    } else if (end === null) {
      if (begin < length) out.push([begin, length]);
    } else if (begin < length) {
      out.push([begin, Math.min(end + 1, length)]);
    }
  }
  // RFC 7233 6.1: more than 50 ranges, more than 2 overlapping or 8+ out of order are refused.
  if (out.length > 50) return [];
  let overlaps = 0;
  for (let i = 0; i < out.length; i++) {
    for (let k = i + 1; k < out.length; k++) {
      const [s1, e1] = out[i]!;
      const [s2, e2] = out[k]!;
      if ((s1 < s2 && s2 < e1) || (s1 < e2 && e2 < e1) || (s2 < s1 && s1 < e2) || (s2 < e1 && e1 < e2)) {
        if (++overlaps > 2) return [];
      }
    }
  }
  const ascending = out.every((r, i) => i === 0 || !(out[i - 1]![0] > r[0] || (out[i - 1]![0] === r[0] && out[i - 1]![1] > r[1])));
  if (!ascending && out.length >= 8) return [];
  return out;
}

// ------------------------------------------------------------------------------- multiphase MIME PUT

/** What a proxy's EC PUT announced: a MIME body with the object, a metadata footer, a commit. */
function multiphaseState(req: ObjectRequest): { boundary: string; footer: boolean; commit: boolean } | null {
  const commit = configTrueValue(req.headers.get('x-backend-obj-multiphase-commit') ?? 'false');
  const footer = configTrueValue(req.headers.get('x-backend-obj-metadata-footer') ?? 'false');
  if (!commit && !footer) return null;
  const boundary = req.headers.get('x-backend-obj-multipart-mime-boundary');
  if (!boundary) throw badRequest('no MIME boundary');
  return { boundary, footer, commit };
}

interface MimeDocument {
  headers: RequestHeaders;
  body: ByteSource;
}

/**
 * The documents of a multipart MIME body, read as they stream past (swift.common.utils'
 * iter_multipart_mime_documents): each document's body ends at the next '\r\n--boundary'.
 */
class MimeDocuments {
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;
  private started = false;
  private finished = false;
  private current: { done: boolean } | null = null;
  private readonly delim: Buffer;

  constructor(
    private readonly src: ByteSource,
    boundary: string,
    private readonly chunkSize: number,
    private readonly timeoutMs: number,
  ) {
    this.delim = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  private async fill(): Promise<boolean> {
    if (this.eof) return false;
    const b = await this.src.read(this.chunkSize, this.timeoutMs);
    if (!b) {
      this.eof = true;
      return false;
    }
    this.buf = Buffer.concat([this.buf, b]);
    return true;
  }

  private async readLine(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf('\r\n');
      if (nl >= 0) {
        const line = this.buf.subarray(0, nl).toString('latin1');
        this.buf = this.buf.subarray(nl + 2);
        return line;
      }
      if (this.buf.length > MAX_HEADER_SIZE) throw badRequest('MIME header line too long');
      if (!(await this.fill())) throw badRequest('premature end of MIME document');
    }
  }

  async next(): Promise<MimeDocument | null> {
    if (this.current && !this.current.done) await this.drainCurrent();
    if (!this.started) {
      // The body opens with '--boundary' (no leading CRLF).
      this.started = true;
      const first = this.delim.subarray(2);
      while (this.buf.length < first.length) if (!(await this.fill())) throw badRequest('invalid MIME: no starting boundary');
      if (!this.buf.subarray(0, first.length).equals(first)) throw badRequest('invalid MIME: no starting boundary');
      this.buf = this.buf.subarray(first.length);
    }
    if (this.finished) return null;
    // After a boundary: '--' ends the body, otherwise a CRLF and the document's headers.
    while (this.buf.length < 2) if (!(await this.fill())) return null;
    if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
      this.finished = true;
      return null;
    }
    await this.readLine();
    const headers = new RequestHeaders();
    for (;;) {
      const line = await this.readLine();
      if (!line) break;
      const c = line.indexOf(':');
      if (c > 0) headers.set(line.slice(0, c).trim(), line.slice(c + 1).trim());
    }
    const state = { done: false };
    this.current = state;
    const body: ByteSource = {
      read: async (max: number) => {
        if (state.done) return null;
        for (;;) {
          const i = this.buf.indexOf(this.delim);
          if (i >= 0) {
            if (i === 0) {
              this.buf = this.buf.subarray(this.delim.length);
              state.done = true;
              return null;
            }
            const out = this.buf.subarray(0, Math.min(i, max));
            this.buf = this.buf.subarray(out.length);
            return out;
          }
          // Keep back what could be the start of a delimiter.
          const safe = this.buf.length - (this.delim.length - 1);
          if (safe > 0) {
            const out = this.buf.subarray(0, Math.min(safe, max));
            this.buf = this.buf.subarray(out.length);
            return out;
          }
          if (!(await this.fill())) throw new SourceReadError('MIME document ended without its boundary');
        }
      },
    };
    return { headers, body };
  }

  private async drainCurrent(): Promise<void> {
    if (!this.current) return;
    const doc = this.current;
    while (!doc.done) {
      const i = this.buf.indexOf(this.delim);
      if (i >= 0) {
        this.buf = this.buf.subarray(i + this.delim.length);
        doc.done = true;
        break;
      }
      this.buf = this.buf.subarray(Math.max(0, this.buf.length - (this.delim.length - 1)));
      if (!(await this.fill())) throw new SourceReadError('MIME document ended without its boundary');
    }
  }

  /** Reads to the end of the current chunked sequence (what is left should be the tail boundary's CRLF). */
  async endPhase(): Promise<void> {
    while (await this.fill()) {
      // buffered for the next document
    }
  }

  /** After a second 100 Continue: the body goes on. */
  resume(): void {
    this.eof = false;
  }

  /** Reads what is left of the body, up to its final boundary. */
  async drain(): Promise<void> {
    while (await this.next()) {
      // documents after the commit are ignored, as Swift does
    }
    while (await this.fill()) this.buf = Buffer.alloc(0);
  }
}

async function readAllOf(src: ByteSource, timeoutMs: number, limit = 1 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for (;;) {
    const b = await src.read(65536, timeoutMs);
    if (!b) break;
    parts.push(Buffer.from(b));
    n += b.length;
    if (n > limit) throw badRequest('MIME document too large');
  }
  return Buffer.concat(parts);
}

/** The JSON metadata footer, checked against its Content-MD5. */
async function readMetadataFooter(docs: MimeDocuments): Promise<RequestHeaders> {
  const doc = await docs.next();
  if (!doc) throw badRequest("couldn't find footer MIME doc");
  const body = await readAllOf(doc.body, 60_000);
  const md5 = doc.headers.get('content-md5');
  if (!md5) throw badRequest('no Content-MD5 in footer');
  if (md5 !== createHash('md5').update(body).digest('hex')) throw new ReplyError({ status: 422, body: 'footer MD5 mismatch' });
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw badRequest('invalid JSON for footer doc');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('invalid JSON for footer doc');
  // JSON text is unicode; Swift's footer values become WSGI (latin-1) strings of their UTF-8.
  return new RequestHeaders(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, Buffer.from(String(v), 'utf8').toString('latin1')]));
}

async function readPutCommit(docs: MimeDocuments): Promise<boolean> {
  const doc = await docs.next();
  if (!doc) throw badRequest("couldn't find PUT commit MIME doc");
  await readAllOf(doc.body, 60_000);
  return doc.headers.get('x-document') === 'put commit';
}
