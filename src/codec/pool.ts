// CodecPool: ECDriver work spread over worker threads, for objects of many segments. Segments
// are independent, so batches of them go to whichever worker is free; each batch travels as
// one buffer and comes back as one (moved, not copied). Workers are Web Workers or Node
// worker_threads, behind a small port interface so that any runtime can supply its own.
import type { ECDriverOptions } from './ec-driver.js';
import {
  ECBackendNotSupported,
  ECBadChecksum,
  ECBadHeader,
  ECError,
  ECInsufficientFragments,
  ECInvalidParameter,
  ECSingularMatrix,
  ECWasmUnavailable,
} from './errors.js';
import { wasmSource } from './wasm.js';
import type { InitMessage, JobMessage, ReadyMessage, ResultMessage } from './worker.js';

/** The pool's side of one worker. */
export interface WorkerPort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onMessage(handler: (message: unknown) => void): void;
  onError(handler: (error: unknown) => void): void;
  terminate(): unknown;
}

export type WorkerFactory = () => WorkerPort;

export interface CodecPoolOptions extends Omit<ECDriverOptions, 'runtime'> {
  /** Worker count; by default the machine's cores (navigator.hardwareConcurrency) less one, at least 1. */
  workers?: number;
  /** Starts one worker; by default a module worker running this package's worker.js. */
  spawn?: WorkerFactory;
  /** Bytes of input per message; larger batches cost fewer messages, smaller ones balance better. */
  batchBytes?: number;
}

const ERRORS: Record<string, new (message: string) => ECError> = {
  ECInvalidParameter,
  ECBackendNotSupported,
  ECBadHeader,
  ECBadChecksum,
  ECInsufficientFragments,
  ECSingularMatrix,
  ECWasmUnavailable,
};

function revive(e: { name: string; message: string }): Error {
  const Type = ERRORS[e.name];
  return Type ? new Type(e.message) : new Error(`${e.name}: ${e.message}`);
}

interface NodeWorker {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  on(event: 'message' | 'error', handler: (value: unknown) => void): void;
  unref?(): void;
  terminate(): Promise<number>;
}

const workerUrl = (): URL => new URL('./worker.js', import.meta.url);

/** A module worker running worker.js: worker_threads in Node, Worker elsewhere. */
export function defaultWorkerFactory(url: URL = workerUrl()): WorkerFactory {
  const wt = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:worker_threads') as
    | { Worker: new (url: URL) => NodeWorker }
    | undefined;
  if (wt) {
    return () => {
      const w = new wt.Worker(url);
      return {
        postMessage: (m, t) => w.postMessage(m, t),
        onMessage: (h) => w.on('message', h),
        onError: (h) => w.on('error', h),
        terminate: () => w.terminate(),
      };
    };
  }
  const WebWorker = (globalThis as { Worker?: new (url: URL, opts: { type: 'module' }) => Worker }).Worker;
  if (!WebWorker) throw new ECInvalidParameter('this runtime has no workers; pass a spawn function');
  return () => {
    const w = new WebWorker(url, { type: 'module' });
    return {
      postMessage: (m, t) => w.postMessage(m, t ?? []),
      onMessage: (h) => w.addEventListener('message', (e) => h(e.data)),
      onError: (h) => w.addEventListener('error', (e) => h(e)),
      terminate: () => w.terminate(),
    };
  };
}

interface Job {
  op: JobMessage['op'];
  /** The batch's items, packed into one buffer only when the job is sent. */
  batch: ReadonlyArray<readonly Uint8Array[]>;
  layout: number[];
  missing?: number[];
  run: RunState;
  index: number;
  resolve: (result: { parts: Uint8Array[][]; output: ArrayBuffer }) => void;
  reject: (e: unknown) => void;
}

/** One call's progress: jobs are sent only a window ahead of what has been delivered. */
interface RunState {
  delivered: number;
  window: number;
}

interface Slot {
  port: WorkerPort;
  busy: number;
  pending: Map<number, Job>;
}

export class CodecPool {
  readonly k: number;
  readonly m: number;
  readonly size: number;
  /** The wasm build the workers run. */
  readonly kernel: string;
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private readonly batchBytes: number;
  private nextId = 1;
  private closed = false;
  /**
   * Input buffers the workers have handed back. Packing a batch into one of these, not into
   * fresh memory, spares the calling thread the page faults of new memory on every batch.
   */
  private readonly spare: ArrayBuffer[] = [];
  /** Output buffers whose contents the caller of an *Each method is done with. */
  private readonly spareOut: ArrayBuffer[] = [];
  private failure: unknown = null;

  private constructor(k: number, m: number, slots: Slot[], kernel: string, batchBytes: number) {
    this.k = k;
    this.m = m;
    this.slots = slots;
    this.size = slots.length;
    this.kernel = kernel;
    this.batchBytes = batchBytes;
  }

  static async create(opts: CodecPoolOptions): Promise<CodecPool> {
    const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
    const count = opts.workers ?? Math.max(1, (nav?.hardwareConcurrency ?? 2) - 1);
    if (!Number.isInteger(count) || count < 1) throw new ECInvalidParameter(`invalid worker count ${String(count)}`);
    const batchBytes = opts.batchBytes ?? 4 << 20;
    const { workers: _w, spawn, batchBytes: _b, ...driver } = opts;
    // The build is chosen (and fetched, if remote) here, once, and sent to every worker.
    const wasm = await wasmSource(driver.kernels);
    const factory = spawn ?? defaultWorkerFactory();
    const slots: Slot[] = [];
    const kernels: string[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const port = factory();
        const slot: Slot = { port, busy: 0, pending: new Map() };
        slots.push(slot);
        kernels.push(
          await new Promise<string>((resolve, reject) => {
            let ready = false;
            port.onError((e) => (ready ? undefined : reject(e)));
            port.onMessage((raw) => {
              const msg = raw as ReadyMessage;
              if (ready) return;
              ready = true;
              if (msg.type === 'ready') resolve(msg.kernel);
              else reject(revive((msg as { error: { name: string; message: string } }).error));
            });
            port.postMessage({ type: 'init', options: { ...driver, kernels: wasm.kind }, wasm } satisfies InitMessage);
          }),
        );
      }
    } catch (e) {
      await Promise.all(slots.map((s) => s.port.terminate()));
      throw e;
    }
    const pool = new CodecPool(driver.k, driver.m, slots, kernels[0]!, batchBytes);
    for (const slot of slots) pool.listen(slot);
    return pool;
  }

  /**
   * The fragments of each segment of `data` cut into segmentSize pieces (whole segments, then
   * the remainder, as Swift's proxy cuts them): result[s][i] is fragment i of segment s, the
   * same bytes ECDriver.encode gives.
   */
  encode(data: Uint8Array, segmentSize: number): Promise<Uint8Array[][]> {
    if (!(data instanceof Uint8Array)) throw new ECInvalidParameter('encode takes a Uint8Array');
    if (!Number.isInteger(segmentSize) || segmentSize < 1) throw new ECInvalidParameter(`invalid segment size ${String(segmentSize)}`);
    const segments: Uint8Array[] = [];
    for (let at = 0; at < data.length; at += segmentSize) segments.push(data.subarray(at, Math.min(at + segmentSize, data.length)));
    return this.encodeSegments(segments);
  }

  /** ECDriver.encode of every segment. */
  encodeSegments(segments: readonly Uint8Array[]): Promise<Uint8Array[][]> {
    return this.collect('encode', segments.map((s) => [s]));
  }

  /** ECDriver.decode of every fragment set (each at least k fragments of one segment, of one size). */
  async decodeSegments(fragmentSets: ReadonlyArray<readonly Uint8Array[]>): Promise<Uint8Array[]> {
    return (await this.collect('decode', fragmentSets)).map((p) => p[0]!);
  }

  /** ECDriver.reconstruct(set, missing) of every fragment set. */
  reconstructSegments(fragmentSets: ReadonlyArray<readonly Uint8Array[]>, missing: readonly number[]): Promise<Uint8Array[][]> {
    return this.collect('reconstruct', fragmentSets, [...missing]);
  }

  /**
   * encode, handing each segment's fragments to onSegment in segment order instead of
   * returning them all. The fragments are views of a buffer that is reused once onSegment
   * returns (or its promise settles): copy what must outlive the call. Memory stays bounded
   * by a few batches per worker whatever the object's size, and no fresh memory is touched
   * per batch once the buffers exist, which is what lets the workers scale.
   */
  encodeEach(data: Uint8Array, segmentSize: number, onSegment: (fragments: Uint8Array[], index: number) => unknown): Promise<void> {
    if (!(data instanceof Uint8Array)) throw new ECInvalidParameter('encode takes a Uint8Array');
    if (!Number.isInteger(segmentSize) || segmentSize < 1) throw new ECInvalidParameter(`invalid segment size ${String(segmentSize)}`);
    const segments: Uint8Array[][] = [];
    for (let at = 0; at < data.length; at += segmentSize) segments.push([data.subarray(at, Math.min(at + segmentSize, data.length))]);
    return this.run('encode', segments, undefined, true, onSegment);
  }

  /** decodeSegments, each segment handed to onSegment in order, as encodeEach does. */
  decodeEach(fragmentSets: ReadonlyArray<readonly Uint8Array[]>, onSegment: (segment: Uint8Array, index: number) => unknown): Promise<void> {
    return this.run('decode', fragmentSets, undefined, true, (parts, i) => onSegment(parts[0]!, i));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const e = new ECInvalidParameter('the codec pool was closed');
    for (const job of this.queue.splice(0)) job.reject(e);
    for (const slot of this.slots) for (const job of slot.pending.values()) job.reject(e);
    await Promise.all(this.slots.map((s) => s.port.terminate()));
  }

  private async collect(op: Job['op'], items: ReadonlyArray<readonly Uint8Array[]>, missing?: number[]): Promise<Uint8Array[][]> {
    const out: Uint8Array[][] = [];
    await this.run(op, items, missing, false, (parts) => void out.push(parts));
    return out;
  }

  /**
   * Cuts items into batches of about batchBytes, runs them on the workers and hands every
   * item's parts to deliver, in item order. With recycle, each batch's output buffer is taken
   * back for later batches once deliver is done with it.
   */
  private async run(
    op: Job['op'],
    items: ReadonlyArray<readonly Uint8Array[]>,
    missing: number[] | undefined,
    recycle: boolean,
    deliver: (parts: Uint8Array[], index: number) => unknown,
  ): Promise<void> {
    if (this.closed) throw new ECInvalidParameter('the codec pool was closed');
    if (this.failure) throw this.failure;
    for (const frags of items) {
      if (op !== 'encode' && frags.some((f) => !(f instanceof Uint8Array) || f.length !== frags[0]!.length)) {
        throw new ECInvalidParameter('each fragment set must hold Uint8Arrays of one length');
      }
    }
    const batches: Array<ReadonlyArray<readonly Uint8Array[]>> = [];
    // Enough batches for every worker, none much over batchBytes.
    const total = items.reduce((a, f) => a + f.reduce((b, x) => b + x.length, 0), 0);
    const target = Math.max(1, Math.min(this.batchBytes, Math.ceil(total / (this.size * 2))));
    let cur: Array<readonly Uint8Array[]> = [];
    let bytes = 0;
    for (const frags of items) {
      cur.push(frags);
      bytes += frags.reduce((b, x) => b + x.length, 0);
      if (bytes >= target) {
        batches.push(cur);
        cur = [];
        bytes = 0;
      }
    }
    if (cur.length > 0) batches.push(cur);
    const layoutOf = (batch: ReadonlyArray<readonly Uint8Array[]>): number[] =>
      op === 'encode' ? batch.map((i) => i[0]!.length) : batch.flatMap((f) => [f.length, f[0]?.length ?? 0]);
    // Results wait here until every earlier batch has been delivered.
    const state: RunState = { delivered: 0, window: recycle ? 2 * this.size + 1 : Infinity };
    const done = batches.map(
      (batch, index) =>
        new Promise<{ parts: Uint8Array[][]; output: ArrayBuffer }>((resolve, reject) => {
          this.queue.push({ op, batch, layout: layoutOf(batch), missing, run: state, index, resolve, reject });
        }),
    );
    this.pump();
    let item = 0;
    try {
      for (let b = 0; b < batches.length; b++) {
        const { parts, output } = await done[b]!;
        for (const p of parts) await deliver(p, item++);
        if (recycle && this.spareOut.length < 2 * this.size + 2) this.spareOut.push(output);
        state.delivered = b + 1;
        this.pump();
      }
    } catch (e) {
      // Later batches still settle; nothing waits for them, so their rejections are dropped.
      for (const d of done) d.catch(() => undefined);
      for (const job of this.queue) if (job.run === state) job.run.window = -1;
      throw e;
    }
  }

  private listen(slot: Slot): void {
    slot.port.onMessage((raw) => {
      const msg = raw as ResultMessage;
      if (msg.type !== 'result') return;
      const job = slot.pending.get(msg.id);
      if (!job) return;
      slot.pending.delete(msg.id);
      slot.busy--;
      if (msg.input && this.spare.length < 2 * this.size + 2) this.spare.push(msg.input);
      if (msg.unused && this.spareOut.length < 2 * this.size + 2) this.spareOut.push(msg.unused);
      if (msg.error) job.reject(revive(msg.error));
      else job.resolve({ parts: unpack(new Uint8Array(msg.buffer!), msg.layout!), output: msg.buffer! });
      this.pump();
    });
    slot.port.onError((e) => {
      this.failure = e instanceof Error ? e : new Error(String(e));
      for (const job of slot.pending.values()) job.reject(this.failure);
      slot.pending.clear();
      for (const job of this.queue.splice(0)) job.reject(this.failure);
    });
  }

  /** One buffer holding a batch's bytes end to end, ready to move to a worker. */
  private pack(batch: ReadonlyArray<readonly Uint8Array[]>): Uint8Array {
    const parts = batch.flat();
    // Parts lying end to end in one SharedArrayBuffer (an object's consecutive segments, say)
    // go as one view of it: the workers read them there and this thread copies nothing.
    const first = parts[0];
    if (first && typeof SharedArrayBuffer !== 'undefined' && first.buffer instanceof SharedArrayBuffer) {
      let end = first.byteOffset + first.length;
      let contiguous = true;
      for (let i = 1; i < parts.length && contiguous; i++) {
        contiguous = parts[i]!.buffer === first.buffer && parts[i]!.byteOffset === end;
        end += parts[i]!.length;
      }
      if (contiguous) return new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset);
    }
    const total = parts.reduce((a, p) => a + p.length, 0);
    const i = this.spare.findIndex((b) => b.byteLength >= total && b.byteLength <= 2 * total + 65536);
    const out = i >= 0 ? new Uint8Array(this.spare.splice(i, 1)[0]!, 0, total) : new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Two batches in flight per worker: one running, one waiting, so no worker idles between. */
  private pump(): void {
    while (this.queue.length > 0) {
      const job = this.queue[0]!;
      if (job.run.window < 0) {
        // Its call failed: drop the job unsent.
        this.queue.shift();
        job.reject(new ECInvalidParameter('an earlier batch of this call failed'));
        continue;
      }
      if (job.index >= job.run.delivered + job.run.window) return;
      const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
      if (slot.busy >= 2) return;
      this.queue.shift();
      const id = this.nextId++;
      slot.pending.set(id, job);
      slot.busy++;
      const bytes = this.pack(job.batch);
      const shared = bytes.buffer instanceof ArrayBuffer ? null : bytes.buffer;
      const output = job.run.window === Infinity ? undefined : this.spareOut.pop();
      const msg: JobMessage = {
        type: 'job',
        id,
        op: job.op,
        buffer: bytes.buffer,
        offset: bytes.byteOffset,
        layout: job.layout,
        missing: job.missing,
        output,
      };
      const transfer: ArrayBuffer[] = [];
      if (!shared) transfer.push(bytes.buffer as ArrayBuffer);
      if (output) transfer.push(output);
      slot.port.postMessage(msg, transfer);
    }
  }
}

function unpack(bytes: Uint8Array, layout: number[]): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  let at = 0;
  for (let i = 0; i < layout.length; ) {
    const count = layout[i++]!;
    const parts: Uint8Array[] = [];
    for (let j = 0; j < count; j++) {
      const len = layout[i++]!;
      parts.push(bytes.subarray(at, at + len));
      at += len;
    }
    out.push(parts);
  }
  return out;
}
