// Streaming: an object's bytes into its k + m fragment archives, and one archive rebuilt from
// others, segment by segment with bounded memory. A fragment archive is what Swift stores for
// one fragment index: that index's fragment of every segment, end to end (whole segments of
// segmentSize, then the remainder, as Swift's proxy cuts them; an empty object has empty
// archives). Every fragment starts with its 80-byte header, whose `size` field frames it, so
// archives are read back without knowing the segment size.
import { copyOut, type ECDriver, type FragmentSet } from './ec-driver.js';
import { ECBadHeader, ECInsufficientFragments, ECInvalidParameter } from './errors.js';
import { FRAGMENT_MAGIC, HEADER_SIZE } from './fragment.js';

/** Bytes from anywhere: a WHATWG ReadableStream, an async iterable (a Node stream), or an iterable. */
export type ByteSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Pull-based reading of any ByteSource. */
function readerOf(source: ByteSource): { next(): Promise<Uint8Array | null>; cancel(reason?: unknown): Promise<void> } {
  if (typeof (source as ReadableStream<Uint8Array>).getReader === 'function') {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    return {
      next: async () => {
        const r = await reader.read();
        return r.done ? null : r.value;
      },
      cancel: async (reason) => {
        await reader.cancel(reason).catch(() => undefined);
      },
    };
  }
  const asyncIt = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator];
  const it = asyncIt ? asyncIt.call(source) : (source as Iterable<Uint8Array>)[Symbol.iterator]();
  return {
    next: async () => {
      const r = await it.next();
      if (r.done) return null;
      if (!(r.value instanceof Uint8Array)) throw new ECInvalidParameter('a byte source yielded something that is not a Uint8Array');
      return r.value;
    },
    cancel: async (reason) => {
      await Promise.resolve(it.return?.(reason)).catch(() => undefined);
    },
  };
}

export interface EncodeStreamOptions {
  /** Bytes per segment; Swift's default ec_segment_size is 1 MiB. */
  segmentSize: number;
}

/**
 * The fragments of each segment of `source`, in order: k + m fragments per segment, as
 * ECDriver.encode makes them. The segment is gathered in wasm memory, so each input byte is
 * copied once on its way in; each yielded fragment is the caller's to keep.
 */
export async function* encodeSegments(ec: ECDriver, source: ByteSource, opts: EncodeStreamOptions): AsyncGenerator<Uint8Array[]> {
  const { segmentSize } = opts;
  if (!Number.isInteger(segmentSize) || segmentSize < 1) throw new ECInvalidParameter(`invalid segment size ${String(segmentSize)}`);
  const set = ec.createFragmentSet(segmentSize);
  const reader = readerOf(source);
  let done = false;
  try {
    let filled = 0;
    let any = false;
    for (;;) {
      const chunk = await reader.next();
      if (chunk === null) break;
      any ||= chunk.length > 0;
      let off = 0;
      while (off < chunk.length) {
        const take = Math.min(segmentSize - filled, chunk.length - off);
        // A fresh view each time: other work on this runtime may have grown its memory.
        set.segment.set(chunk.subarray(off, off + take), filled);
        filled += take;
        off += take;
        if (filled === segmentSize) {
          yield ec.encode(set.segment.subarray(0, segmentSize));
          filled = 0;
        }
      }
    }
    if (filled > 0) yield ec.encode(set.segment.subarray(0, filled));
    else if (!any) return;
    done = true;
  } finally {
    if (!done) await reader.cancel();
    set.dispose();
  }
}

export interface ArchiveStreamOptions extends EncodeStreamOptions {
  /** Segments each archive stream may hold unread before encoding waits; 2 by default. */
  highWaterMark?: number;
}

/**
 * The k + m fragment archives of `source` as ReadableStreams. Encoding runs only as fast as
 * the slowest archive is read (each stream holds at most highWaterMark segments), so memory
 * stays bounded whatever the object's size. Cancelling one archive drops it; cancelling all
 * stops reading the source. An error in the source errors every archive.
 */
export function encodeArchives(ec: ECDriver, source: ByteSource, opts: ArchiveStreamOptions): ReadableStream<Uint8Array>[] {
  const n = ec.k + ec.m;
  const hwm = opts.highWaterMark ?? 2;
  if (!Number.isInteger(hwm) || hwm < 1) throw new ECInvalidParameter(`invalid highWaterMark ${String(hwm)}`);
  const controllers: Array<ReadableStreamDefaultController<Uint8Array> | null> = new Array(n).fill(null);
  const cancelled = new Array<boolean>(n).fill(false);
  let wake: (() => void) | null = null;
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  let started = false;
  let segments: AsyncGenerator<Uint8Array[]> | null = null;

  const live = (): number[] => [...Array(n).keys()].filter((i) => !cancelled[i]);
  const hungry = (): boolean => live().every((i) => (controllers[i]!.desiredSize ?? 0) > 0);

  async function produce(): Promise<void> {
    segments = encodeSegments(ec, source, opts);
    try {
      for (;;) {
        while (live().length > 0 && !hungry()) await new Promise<void>((resolve) => (wake = resolve));
        if (live().length === 0) {
          await segments.return(undefined);
          return;
        }
        const r = await segments.next();
        if (r.done) break;
        for (const i of live()) controllers[i]!.enqueue(r.value[i]!);
      }
      for (const i of live()) controllers[i]!.close();
    } catch (e) {
      for (const i of live()) controllers[i]!.error(e);
    }
  }

  return Array.from(
    { length: n },
    (_, i) =>
      new ReadableStream<Uint8Array>(
        {
          start(controller) {
            controllers[i] = controller;
          },
          pull() {
            if (!started) {
              started = true;
              void produce();
            }
            poke();
          },
          cancel() {
            cancelled[i] = true;
            poke();
          },
        },
        { highWaterMark: hwm },
      ),
  );
}

/** Fragments read one by one from an archive: the header first, then the rest. */
class FragmentReader {
  private readonly reader: ReturnType<typeof readerOf>;
  private pending: Uint8Array | null = null;
  private ended = false;

  constructor(source: ByteSource) {
    this.reader = readerOf(source);
  }

  /** The next fragment's header, or null at a clean end of the archive. */
  async header(what: string): Promise<{ head: Uint8Array; length: number } | null> {
    const head = new Uint8Array(HEADER_SIZE);
    const got = await this.fill(() => head, 0);
    if (got === 0) return null;
    if (got < HEADER_SIZE) throw new ECBadHeader(`${what}: archive ends inside a fragment header`);
    const dv = new DataView(head.buffer);
    let le = true;
    if (dv.getUint32(59, true) !== FRAGMENT_MAGIC) {
      if (dv.getUint32(59, false) !== FRAGMENT_MAGIC) throw new ECBadHeader(`${what}: not a fragment archive (bad magic)`);
      le = false;
    }
    return { head, length: HEADER_SIZE + dv.getUint32(4, le) };
  }

  /**
   * The rest of the fragment whose header was just read, into view() (header included there).
   * view is asked again after every wait: a view of wasm memory is detached if it grows.
   */
  async body(head: Uint8Array, view: () => Uint8Array, what: string): Promise<void> {
    view().set(head);
    const length = view().length;
    if ((await this.fill(view, HEADER_SIZE)) < length) throw new ECBadHeader(`${what}: archive ends inside a fragment`);
  }

  cancel(reason?: unknown): Promise<void> {
    return this.reader.cancel(reason);
  }

  /** Fills view() from offset `from`; returns how far it got (less than its length at the end). */
  private async fill(view: () => Uint8Array, from: number): Promise<number> {
    let at = from;
    for (;;) {
      const dst = view();
      if (at >= dst.length) return at;
      if (!this.pending || this.pending.length === 0) {
        if (this.ended) return at;
        this.pending = await this.reader.next();
        if (this.pending === null) this.ended = true;
        continue;
      }
      const take = Math.min(dst.length - at, this.pending.length);
      dst.set(this.pending.subarray(0, take), at);
      this.pending = this.pending.subarray(take);
      at += take;
    }
  }
}

export interface RebuildOptions {
  /** A segment size at least as large as the archives' (sizes the buffers up front); grows as needed. */
  segmentSize?: number;
  /** Called when a source fails or ends early and the rebuild goes on without it. */
  onSourceDropped?: (source: number, error: unknown) => void;
}

/**
 * Fragment archive `index`, rebuilt segment by segment from other archives of the same object
 * (at least k of them, in any order; their headers say which index each holds). Each
 * segment's fragments are read into wasm memory and rebuilt in place, so memory holds one
 * segment's fragments whatever the object's size. A source that fails or ends early is
 * dropped while k others remain; with fewer, the rebuild fails.
 */
export async function* rebuildArchive(ec: ECDriver, sources: readonly ByteSource[], index: number, opts: RebuildOptions = {}): AsyncGenerator<Uint8Array> {
  const n = ec.k + ec.m;
  if (!Number.isInteger(index) || index < 0 || index >= n) throw new ECInvalidParameter(`index to rebuild ${String(index)} is out of range 0..${n - 1}`);
  if (!Array.isArray(sources) || sources.length < ec.k) {
    throw new ECInsufficientFragments(`rebuilding an archive needs at least k=${ec.k} source archives, got ${Array.isArray(sources) ? sources.length : 0}`);
  }
  if (sources.length > n) throw new ECInvalidParameter(`${sources.length} source archives for ${n} fragment indexes`);
  const readers = sources.map((s) => new FragmentReader(s));
  const active = readers.map(() => true);
  let inSet: FragmentSet = ec.createFragmentSet(Math.max(opts.segmentSize ?? 65536, 1));
  let outSet: FragmentSet = ec.createFragmentSet(inSet.capacity);
  const drop = (j: number, e: unknown): void => {
    active[j] = false;
    opts.onSourceDropped?.(j, e);
  };
  // Source j's fragment of the current segment lives in slot j of inSet (slots are just
  // regions here: reconstruct reads each fragment's index from its header).
  const slotView = (j: number, len: number) => () => new Uint8Array(inSet.segment.buffer, inSet.slot(j), len);
  try {
    for (let segment = 0; ; segment++) {
      const heads = await Promise.all(
        readers.map(async (r, j) => {
          if (!active[j]) return undefined;
          try {
            return await r.header(`source archive ${j}, segment ${segment}`);
          } catch (e) {
            drop(j, e);
            return undefined;
          }
        }),
      );
      const ended = heads.flatMap((h, j) => (active[j] && h === null ? [j] : []));
      const live = heads.flatMap((h, j) => (active[j] && h ? [j] : []));
      if (live.length === 0 && ended.length > 0) return;
      // Archives that ended where others go on are short: they are sources no more.
      for (const j of ended) drop(j, new ECBadHeader(`source archive ${j} ended after ${segment} segments while others go on`));
      const longest = Math.max(0, ...live.map((j) => heads[j]!.length));
      if (longest > inSet.fragmentCapacity) {
        const capacity = (longest - HEADER_SIZE) * ec.k;
        inSet.dispose();
        outSet.dispose();
        inSet = ec.createFragmentSet(capacity);
        outSet = ec.createFragmentSet(capacity);
      }
      await Promise.all(
        live.map(async (j) => {
          try {
            await readers[j]!.body(heads[j]!.head, slotView(j, heads[j]!.length), `source archive ${j}, segment ${segment}`);
          } catch (e) {
            drop(j, e);
          }
        }),
      );
      const got = live.filter((j) => active[j]);
      if (got.length < ec.k) {
        throw new ECInsufficientFragments(`segment ${segment}: only ${got.length} source archives left, k=${ec.k} are needed`);
      }
      const frags = got.map((j) => slotView(j, heads[j]!.length)());
      const [rebuilt] = ec.reconstructInto(frags, [index], outSet);
      yield copyOut(rebuilt!, 0, rebuilt!.length);
    }
  } finally {
    await Promise.all(readers.map((r) => r.cancel()));
    inSet.dispose();
    outSet.dispose();
  }
}

/** rebuildArchive as a ReadableStream. */
export function rebuildArchiveStream(ec: ECDriver, sources: readonly ByteSource[], index: number, opts: RebuildOptions = {}): ReadableStream<Uint8Array> {
  let it: AsyncGenerator<Uint8Array> | null = null;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      it ??= rebuildArchive(ec, sources, index, opts);
      try {
        const r = await it.next();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (e) {
        controller.error(e);
      }
    },
    async cancel() {
      await it?.return(undefined);
    },
  });
}
