// What the object-server suites share: a sandbox (swift.conf of its own, devices directories),
// our ObjectServer in-process, a real swift-object-server started through scripts/swift-launch.py
// (so Swift reads the sandbox's swift.conf, never /etc/swift), Swift's own diskfile code and
// ssync Sender driven from Python, and raw HTTP/SSYNC clients that show every byte.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ConfigParser } from '../../src/swift/conf.js';
import { parseSwiftConf, type StoragePolicy, type SwiftConf } from '../../src/swift/policies.js';
import { ObjectServer, type ObjectServerInit } from '../../src/server/object-server.js';
import { INSTALL_HINT } from '../helpers/install-hint.js';
import { PYTHON } from '../helpers/swift-python.js';

export const SWIFT_SERVER_INSTALL_HINT = INSTALL_HINT;

/**
 * Whether real Swift (its object server, diskfile code, ssync sender, PyECLib) can judge these
 * suites. Where it cannot they are skipped with one line saying what to install; under CI=true
 * its absence fails the run.
 */
export function realSwiftEnabled(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import swift.obj.server, swift.obj.ssync_sender, swift.obj.diskfile, pyeclib.ec_iface, eventlet'], { encoding: 'utf8' });
  const problem = r.error ? `${PYTHON} cannot run: ${r.error.message}` : r.status !== 0 ? `Swift's object server code is not importable: ${r.stderr.trim().split('\n').pop()}` : null;
  if (!problem) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true and the real-Swift object server checks cannot run: ${problem}. Install: ${SWIFT_SERVER_INSTALL_HINT}`);
  console.warn(`[skipped] real-Swift object server checks: ${problem}. To run them: ${SWIFT_SERVER_INSTALL_HINT}`);
  return false;
}

export const PREFIX = 'fragmend-pre';
export const SUFFIX = 'fragmend-suf';
const LAUNCH = fileURLToPath(new URL('../../scripts/swift-launch.py', import.meta.url));

export const SWIFT_CONF_TEXT =
  `[swift-hash]\nswift_hash_path_prefix = ${PREFIX}\nswift_hash_path_suffix = ${SUFFIX}\n` +
  '[storage-policy:0]\nname = repl\ndefault = yes\n' +
  '[storage-policy:1]\nname = ec42\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\n' +
  'ec_num_data_fragments = 4\nec_num_parity_fragments = 2\n';

export interface Sandbox {
  root: string;
  etc: string;
  swiftConfPath: string;
  swiftConf: SwiftConf;
  policy: StoragePolicy;
  /** A fresh devices directory holding the given (empty) device directories. */
  devices(name: string, devs?: string[]): string;
  cleanup(): void;
}

export function makeSandbox(tag: string): Sandbox {
  const root = mkdtempSync(join(tmpdir(), `fragmend-${tag}-`));
  const etc = join(root, 'etc');
  mkdirSync(etc);
  const swiftConfPath = join(etc, 'swift.conf');
  writeFileSync(swiftConfPath, SWIFT_CONF_TEXT);
  const p = new ConfigParser({ strict: false });
  p.readString(SWIFT_CONF_TEXT);
  const swiftConf = { ...parseSwiftConf(p), path: swiftConfPath };
  return {
    root,
    etc,
    swiftConfPath,
    swiftConf,
    policy: swiftConf.policies.byIndex(1)!,
    devices(name, devs = ['sdb']) {
      const d = join(root, name);
      for (const dev of devs) mkdirSync(join(d, dev), { recursive: true });
      return d;
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Log lines of an in-process server, kept for assertions. */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) this.lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  has(re: RegExp): boolean {
    return this.lines.some((l) => re.test(String(l.msg)));
  }
  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => re.test(String(l.msg)));
      if (hit) return hit;
      if (Date.now() > until) throw new Error(`no log line matching ${re} in:\n${this.lines.map((l) => l.msg).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export async function startOurServer(sbx: Sandbox, devices: string, opts: ObjectServerInit = {}): Promise<{ server: ObjectServer; port: number; logs: LogCapture }> {
  const logs = new LogCapture();
  const server = new ObjectServer({
    devices,
    mountCheck: false,
    bindIp: '127.0.0.1',
    bindPort: 0,
    swiftConf: sbx.swiftConf,
    logger: pino({ level: 'debug' }, logs.stream),
    ...opts,
  });
  const { port } = await server.start();
  return { server, port, logs };
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface SwiftServer {
  port: number;
  pid: number;
  devices: string;
  output(): string;
  stop(): Promise<void>;
}

/** A real swift-object-server (Swift 2.30, eventlet, workers = 0) on 127.0.0.1. */
export async function startSwiftServer(sbx: Sandbox, name: string, devices: string, extra: Record<string, string | number> = {}): Promise<SwiftServer> {
  const port = await freePort();
  const conf = join(sbx.etc, `${name}.conf`);
  const options = { devices, mount_check: 'false', bind_ip: '127.0.0.1', bind_port: port, workers: 0, user: 'root', swift_dir: sbx.etc, log_level: 'DEBUG', ...extra };
  writeFileSync(
    conf,
    '[DEFAULT]\n' +
      Object.entries(options)
        .map(([k, v]) => `${k} = ${v}`)
        .join('\n') +
      '\n[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n',
  );
  const child: ChildProcess = spawn(PYTHON, [LAUNCH, 'object-server', conf, '-v'], {
    env: { ...process.env, FRAGMEND_SWIFT_CONF: sbx.swiftConfPath },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`swift-object-server exited (${child.exitCode}):\n${out}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`swift-object-server did not listen on ${port}:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid!;
  return {
    port,
    pid,
    devices,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, 'SIGTERM');
      const t = setTimeout(() => {
        if (child.exitCode === null) process.kill(pid, 'SIGKILL');
      }, 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ------------------------------------------------------------------------- Swift's Python code

const PY_SWIFT = String.raw`
import base64, hashlib, importlib.util, json, logging, os, pickle, sys
spec = importlib.util.spec_from_file_location('fragmend_swift_launch', os.environ['FRAGMEND_SWIFT_LAUNCH'])
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)
launch.redirect_swift_conf(os.environ['FRAGMEND_SWIFT_CONF'])
OUT = os.fdopen(os.dup(sys.stdout.fileno()), 'w')
sys.stdout = sys.stderr
from swift.common.storage_policy import POLICIES
from swift.common.utils import Timestamp
from swift.obj import diskfile, ssync_sender

records = []
class ListHandler(logging.Handler):
    def emit(self, record):
        records.append('%s: %s' % (record.levelname, record.getMessage()))
logger = logging.getLogger('fragmend-test')
logger.addHandler(ListHandler())
logger.setLevel(logging.DEBUG)
logger.propagate = False

routers = {}
def router(devices):
    if devices not in routers:
        routers[devices] = diskfile.DiskFileRouter({'devices': devices, 'mount_check': 'false', 'disable_fallocate': 'true'}, logger)
    return routers[devices]

def policy(op):
    return POLICIES[op.get('policy', 1)]

def mgr(op):
    return router(op['devices'])[policy(op)]

def jsonable(v):
    if isinstance(v, Timestamp):
        return v.internal
    if isinstance(v, bytes):
        return v.decode('utf-8', 'surrogateescape')
    if isinstance(v, dict):
        return {('null' if k is None else str(k)): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v

def get_df(op, **kw):
    return mgr(op).get_diskfile(op['device'], op['partition'], op['account'], op['container'], op['object'], policy(op), **kw)

results = []
for op in json.load(sys.stdin):
    kind = op['op']
    try:
        if kind == 'put':
            df = get_df(op, frag_index=op.get('frag_index'))
            body = base64.b64decode(op['body'])
            with df.create() as w:
                w.write(body)
                md = dict(op['metadata'])
                md.setdefault('ETag', hashlib.md5(body).hexdigest())
                md['Content-Length'] = str(len(body))
                w.put(md)
                if op.get('durable', True):
                    w.commit(Timestamp(md['X-Timestamp']))
            results.append(None)
        elif kind == 'delete':
            get_df(op).delete(Timestamp(op['timestamp']))
            results.append(None)
        elif kind == 'post':
            get_df(op).write_metadata(op['metadata'])
            results.append(None)
        elif kind == 'tree':
            part = os.path.join(op['devices'], op['device'], 'objects-%d' % op.get('policy', 1), str(op['partition']))
            files = {}
            for dirpath, dirs, names in os.walk(part):
                for n in names:
                    if n in ('hashes.pkl', 'hashes.invalid') or n.startswith('.lock'):
                        continue
                    p = os.path.join(dirpath, n)
                    data = open(p, 'rb').read()
                    files[os.path.relpath(p, part)] = {'size': len(data), 'md5': hashlib.md5(data).hexdigest(), 'metadata': diskfile.read_metadata(p)}
            results.append(files)
        elif kind == 'hashes':
            h = mgr(op).get_hashes(op['device'], op['partition'], op.get('suffixes', []), policy(op))
            results.append({'hashes': jsonable(h), 'pickle': base64.b64encode(pickle.dumps(h, protocol=2)).decode()})
        elif kind == 'hash_path':
            from swift.common.utils import hash_path
            results.append(hash_path(op['account'], op['container'], op['object']))
        elif kind == 'ssync':
            class Daemon(object):
                pass
            d = Daemon()
            d.logger = logger
            d.conn_timeout = op.get('conn_timeout', 5.0)
            d.node_timeout = op.get('node_timeout', 10.0)
            d.http_timeout = op.get('http_timeout', 30.0)
            d.network_chunk_size = 65536
            d._df_router = d._diskfile_router = router(op['devices'])
            fi = op.get('frag_index')
            node = {'replication_ip': '127.0.0.1', 'replication_port': op['port'], 'ip': '127.0.0.1', 'port': op['port'],
                    'device': op['remote_device'], 'index': op.get('backend_index', fi), 'backend_index': op.get('backend_index', fi)}
            job = {'device': op['device'], 'partition': op['partition'], 'policy': policy(op), 'frag_index': fi}
            del records[:]
            sender = ssync_sender.Sender(d, node, job, op['suffixes'], include_non_durable=op.get('include_non_durable', False))
            ok, in_sync = sender()
            results.append({'success': ok, 'in_sync': jsonable(in_sync), 'log': list(records)})
        else:
            raise ValueError('unknown op %r' % kind)
    except Exception as e:
        results.append({'error': type(e).__name__, 'message': str(e)})
OUT.write(json.dumps(results))
OUT.flush()
`;

/** Runs ops with Swift 2.30's own code (asynchronously: an in-process server may be its peer). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function swiftOps(sbx: Sandbox, ops: object[]): Promise<any[]> {
  const child = spawn(PYTHON, ['-c', PY_SWIFT], {
    env: { ...process.env, FRAGMEND_SWIFT_CONF: sbx.swiftConfPath, FRAGMEND_SWIFT_LAUNCH: LAUNCH },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(JSON.stringify(ops));
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  if (code !== 0) throw new Error(`python exited ${code}: ${err}`);
  const res = JSON.parse(out) as Array<{ error?: string; message?: string } | null>;
  res.forEach((r, i) => {
    if (r && typeof r === 'object' && 'error' in r && r.error) throw new Error(`swift op ${JSON.stringify(ops[i]).slice(0, 200)} failed: ${r.error}: ${r.message}\n${err}`);
  });
  return res;
}

// ------------------------------------------------------------------------- raw HTTP clients

export interface RawResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  header(name: string): string | undefined;
}

function parseHead(head: string): { status: number; headers: Array<[string, string]> } {
  const lines = head.split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers = lines.slice(1).map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()] as [string, string];
  });
  return { status, headers };
}

const headerOf = (headers: Array<[string, string]>) => (name: string) => headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];

/** One request on its own connection; the response read to its end (length, chunked or close). */
export async function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array | string): Promise<RawResponse> {
  const sock = connect(port, '127.0.0.1');
  const data: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    sock.on('data', (d: Buffer) => data.push(d));
    sock.on('end', () => resolve());
    sock.on('close', () => resolve());
    sock.on('error', reject);
  });
  const b = body === undefined ? undefined : Buffer.from(body);
  const h = { Host: `127.0.0.1:${port}`, Connection: 'close', ...(b && !Object.keys(headers).some((k) => /^(content-length|transfer-encoding)$/i.test(k)) ? { 'Content-Length': String(b.length) } : {}), ...headers };
  sock.write(Buffer.from(`${method} ${path} HTTP/1.1\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n', 'latin1'));
  if (b) sock.write(b);
  await done;
  const all = Buffer.concat(data);
  const end = all.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no response head: ${JSON.stringify(all.toString('latin1').slice(0, 200))}`);
  const { status, headers: rh } = parseHead(all.subarray(0, end).toString('latin1'));
  let rest: Buffer = all.subarray(end + 4);
  if ((headerOf(rh)('transfer-encoding') ?? '').includes('chunked')) rest = dechunk(rest).payload;
  else if (headerOf(rh)('content-length') !== undefined && method !== 'HEAD') rest = rest.subarray(0, Number(headerOf(rh)('content-length')));
  return { status, headers: rh, body: rest, header: headerOf(rh) };
}

export function dechunk(raw: Buffer): { payload: Buffer; chunks: Buffer[]; final: boolean; rest: Buffer } {
  const chunks: Buffer[] = [];
  let buf = raw;
  for (;;) {
    const nl = buf.indexOf('\r\n');
    if (nl < 0) return { payload: Buffer.concat(chunks), chunks, final: false, rest: buf };
    const size = parseInt(buf.subarray(0, nl).toString('latin1'), 16);
    if (size === 0) return { payload: Buffer.concat(chunks), chunks, final: true, rest: buf.subarray(nl + 2) };
    if (buf.length < nl + 2 + size + 2) return { payload: Buffer.concat(chunks), chunks, final: false, rest: buf };
    chunks.push(buf.subarray(nl + 2, nl + 2 + size));
    buf = buf.subarray(nl + 2 + size + 2);
  }
}

/** A hand-driven SSYNC session: every message its own chunk, the response watched as it streams. */
export class SsyncSession {
  private raw = Buffer.alloc(0);
  private closedFlag = false;
  readonly socket: Socket;
  private readonly ready: Promise<void>;

  constructor(port: number, path: string, headers: Record<string, string>) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => (this.raw = Buffer.concat([this.raw, d])));
    this.socket.on('close', () => (this.closedFlag = true));
    this.socket.on('error', () => (this.closedFlag = true));
    this.ready = new Promise((r) => this.socket.once('connect', () => r()));
    const h = { Host: `127.0.0.1:${port}`, 'Transfer-Encoding': 'chunked', ...headers };
    this.socket.write(`SSYNC ${path} HTTP/1.1\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n');
  }

  /** One chunk. */
  send(data: string | Uint8Array): void {
    const b = Buffer.from(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    if (!b.length) return;
    this.socket.write(`${b.length.toString(16)}\r\n`);
    this.socket.write(b);
    this.socket.write('\r\n');
  }

  /** Bytes that are not chunk framing (to break the framing on purpose). */
  sendRaw(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  finish(): void {
    this.socket.write('0\r\n\r\n');
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Status, headers and the de-chunked body so far. */
  snapshot(): { status: number; headers: Array<[string, string]>; body: string; chunks: string[]; final: boolean } | null {
    const end = this.raw.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const { status, headers } = parseHead(this.raw.subarray(0, end).toString('latin1'));
    const cl = headerOf(headers)('content-length');
    if (cl !== undefined && !(headerOf(headers)('transfer-encoding') ?? '').includes('chunked')) {
      const rest = this.raw.subarray(end + 4, end + 4 + Number(cl)).toString('latin1');
      return { status, headers, body: rest, chunks: [rest], final: rest.length >= Number(cl) };
    }
    const d = dechunk(this.raw.subarray(end + 4));
    return { status, headers, body: d.payload.toString('latin1'), chunks: d.chunks.map((c) => c.toString('latin1')), final: d.final };
  }

  /** Waits until the body contains text (or the connection closes, or time runs out). */
  async waitFor(text: string, timeoutMs = 15_000): Promise<string> {
    await this.ready;
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = this.snapshot();
      if (s && (s.body.includes(text) || s.status !== 200)) return s.body;
      if (this.closedFlag) return s?.body ?? '';
      if (Date.now() > until) throw new Error(`no ${JSON.stringify(text)} in ${JSON.stringify(s?.body)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits for the end of the response (its final chunk, or the server closing); the whole response. */
  async waitDone(timeoutMs = 15_000): Promise<NonNullable<ReturnType<SsyncSession['snapshot']>>> {
    const until = Date.now() + timeoutMs;
    while (!this.closedFlag && !this.snapshot()?.final) {
      if (Date.now() > until) throw new Error(`connection still open; got ${JSON.stringify(this.snapshot()?.body)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const s = this.snapshot();
    if (!s) throw new Error(`no response: ${JSON.stringify(this.raw.toString('latin1').slice(0, 300))}`);
    return s;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The response of a whole scripted SSYNC session: messages sent one chunk each, then the final chunk. */
export async function ssyncScript(
  port: number,
  device: string,
  partition: number | string,
  messages: Array<string | Uint8Array>,
  opts: { fragIndex?: number; policy?: number; finish?: boolean } = {},
): Promise<NonNullable<ReturnType<SsyncSession['snapshot']>>> {
  const headers: Record<string, string> = { 'X-Backend-Storage-Policy-Index': String(opts.policy ?? 1) };
  if (opts.fragIndex !== undefined) {
    headers['X-Backend-Ssync-Frag-Index'] = String(opts.fragIndex);
    headers['X-Backend-Ssync-Node-Index'] = String(opts.fragIndex);
  }
  const s = new SsyncSession(port, `/${device}/${partition}`, headers);
  for (const m of messages) s.send(m);
  if (opts.finish !== false) s.finish();
  try {
    return await s.waitDone();
  } finally {
    s.destroy();
  }
}
