// The worker side of CodecPool: an ECDriver in its own thread, taking batches of segments
// (or of fragment sets) in one buffer and answering with one buffer, moved, not copied,
// across the thread boundary. Runs as a Web Worker (self) or a Node worker_threads worker
// (reached through process.getBuiltinModule, so this file imports no node:* module). It
// brings no wasm build of its own: the pool sends the one it chose in the init message.
import { ECDriver, FragmentSet, type ECDriverOptions } from './ec-driver.js';
import { HEADER_SIZE } from './fragment.js';
import { blockSize } from './segments.js';
import { init, type KernelKind, type KernelPreference } from './wasm.js';

export interface InitMessage {
  type: 'init';
  options: Omit<ECDriverOptions, 'runtime'> & { kernels?: KernelPreference };
  /**
   * The build to run, as the pool's thread has it: bytes, or a compiled Module (both go
   * through postMessage). This file imports no build of its own.
   */
  wasm?: { kind: KernelKind; source: Uint8Array<ArrayBuffer> | WebAssembly.Module };
}

/** One batch: items packed end to end in `buffer` (or a view of shared memory). */
export interface JobMessage {
  type: 'job';
  id: number;
  op: 'encode' | 'decode' | 'reconstruct';
  buffer: ArrayBuffer | SharedArrayBuffer;
  offset: number;
  /** encode: segment lengths; decode / reconstruct: per item, fragment count then fragment length. */
  layout: number[];
  missing?: number[];
  /** A buffer from an earlier result to write this one into, if it is large enough. */
  output?: ArrayBuffer;
}

export interface ResultMessage {
  type: 'result';
  id: number;
  buffer?: ArrayBuffer;
  /** The job's input buffer, moved back so that the pool can pack the next batch into it. */
  input?: ArrayBuffer;
  /** An output buffer offered with the job and not used. */
  unused?: ArrayBuffer;
  /** Per item: how many parts, and each part's length, end to end in buffer. */
  layout?: number[];
  error?: { name: string; message: string };
}

export type ReadyMessage = { type: 'ready'; kernel: string } | { type: 'failed'; error: { name: string; message: string } };

/** What a worker needs from its side of the channel. */
export interface HostPort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onMessage(handler: (message: unknown) => void): void;
}

/** Answers pool messages on `port` until the worker is terminated. */
export function serveCodec(port: HostPort): void {
  let ec: ECDriver | null = null;
  const sets = new Map<number, FragmentSet>();
  port.onMessage((raw) => {
    const msg = raw as InitMessage | JobMessage;
    if (msg.type === 'init') {
      const wasm = msg.wasm;
      (wasm ? init({ wasm: { [wasm.kind]: wasm.source }, kernels: wasm.kind }) : Promise.resolve())
        .then(() => ECDriver.create(wasm ? { ...msg.options, kernels: wasm.kind } : msg.options))
        .then(
          (d) => {
            ec = d;
            port.postMessage({ type: 'ready', kernel: d.kernel } satisfies ReadyMessage);
          },
          (e: Error) => port.postMessage({ type: 'failed', error: { name: e.name, message: e.message } } satisfies ReadyMessage),
        );
      return;
    }
    try {
      const out = runJob(ec!, msg, sets);
      const input = msg.buffer instanceof ArrayBuffer ? msg.buffer : undefined;
      // An offered output buffer too small to use goes back as it came.
      const unused = msg.output && msg.output !== out.buffer ? msg.output : undefined;
      const transfer = [out.buffer, ...(input ? [input] : []), ...(unused ? [unused] : [])];
      port.postMessage({ type: 'result', id: msg.id, buffer: out.buffer, layout: out.layout, input, unused } satisfies ResultMessage, transfer);
    } catch (e) {
      const err = e as Error;
      const input = msg.buffer instanceof ArrayBuffer ? msg.buffer : undefined;
      const unused = msg.output;
      port.postMessage(
        { type: 'result', id: msg.id, error: { name: err.name, message: err.message }, input, unused } satisfies ResultMessage,
        [...(input ? [input] : []), ...(unused ? [unused] : [])],
      );
    }
  });
}

// Results go straight from wasm memory into the one buffer that is sent back.
function runJob(ec: ECDriver, job: JobMessage, sets: Map<number, FragmentSet>): { buffer: ArrayBuffer; layout: number[] } {
  const input = new Uint8Array(job.buffer, job.offset);
  const n = ec.k + ec.m;
  const layout: number[] = [];
  const items: Array<{ frags: Uint8Array[]; len: number }> = [];
  let total = 0;
  let at = 0;
  if (job.op === 'encode') {
    for (const len of job.layout) {
      const fsize = HEADER_SIZE + blockSize(len, ec.k, ec.backend.w);
      layout.push(n, ...new Array<number>(n).fill(fsize));
      items.push({ frags: [input.subarray(at, at + len)], len });
      total += n * fsize;
      at += len;
    }
  } else {
    const missing = [...(job.missing ?? [])].sort((a, b) => a - b);
    for (let i = 0; i < job.layout.length; i += 2) {
      const count = job.layout[i]!;
      const len = job.layout[i + 1]!;
      const frags = Array.from({ length: count }, (_, j) => input.subarray(at + j * len, at + (j + 1) * len));
      at += count * len;
      if (job.op === 'decode') {
        const size = ec.getMetadata(frags[0]!).origDataSize;
        layout.push(1, size);
        total += size;
      } else {
        layout.push(missing.length, ...new Array<number>(missing.length).fill(len));
        total += missing.length * len;
      }
      items.push({ frags, len });
    }
  }
  // Fresh memory costs page faults on every batch; a recycled buffer does not.
  const out = job.output && job.output.byteLength >= total ? new Uint8Array(job.output, 0, total) : new Uint8Array(total);
  let w = 0;
  for (const { frags, len } of items) {
    if (job.op === 'decode') {
      w += ec.decodeInto(frags, out.subarray(w));
      continue;
    }
    const capacity = job.op === 'encode' ? len : (len - HEADER_SIZE) * ec.k;
    // One set, as large as the largest segment seen: smaller ones fit in it too.
    let set = sets.get(0);
    if (!set || set.capacity < capacity) {
      set?.dispose();
      set = ec.createFragmentSet(Math.max(capacity, 1));
      sets.set(0, set);
    }
    let source = frags[0]!;
    if (job.op === 'encode' && !(source.buffer instanceof ArrayBuffer)) {
      // V8 copies out of shared memory byte by byte unless source and length are aligned:
      // one bulk copy of the segment into wasm memory first, then payloads from there.
      set.segment.set(source);
      source = set.segment.subarray(0, source.length);
    }
    const parts = job.op === 'encode' ? ec.encodeInto(source, set) : ec.reconstructInto(frags, job.missing ?? [], set);
    for (const p of parts) {
      out.set(p, w);
      w += p.length;
    }
  }
  return { buffer: out.buffer, layout };
}

interface NodeParentPort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  on(event: 'message', handler: (message: unknown) => void): void;
}

// Started as a worker: find the channel to the pool and serve it.
const nodeWorkerThreads = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.(
  'node:worker_threads',
) as { parentPort?: NodeParentPort | null; isMainThread?: boolean } | undefined;
if (nodeWorkerThreads && !nodeWorkerThreads.isMainThread && nodeWorkerThreads.parentPort) {
  const parent = nodeWorkerThreads.parentPort;
  serveCodec({ postMessage: (m, t) => parent.postMessage(m, t), onMessage: (h) => parent.on('message', h) });
} else if (!nodeWorkerThreads && typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined') {
  const self = globalThis as unknown as { postMessage(m: unknown, t?: Transferable[]): void; addEventListener(t: 'message', h: (e: MessageEvent) => void): void };
  serveCodec({ postMessage: (m, t) => self.postMessage(m, t ?? []), onMessage: (h) => self.addEventListener('message', (e) => h(e.data)) });
}
