// Keeps a long stream of bytes from piling up garbage. Every socket read hands Node a fresh
// buffer whose memory lives outside V8's heap; V8 frees it only when a collection runs, and it
// starts one for outside memory only after some 64 MiB have accumulated. A rebuild reads k
// bytes for every byte it writes, so without help the process grows by that much whatever
// the object's size. A young-generation collection every few MiB read (under a millisecond
// each: the heap of a stream is small), and a full one now and then, keep the process near
// its resting size.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gc: Gc | null | undefined;

function collector(): Gc | null {
  if (gc !== undefined) return gc;
  try {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  } catch {
    gc = null;
  }
  return gc;
}

/**
 * Counts bytes read; collects young garbage every `minorBytes`, and everything every
 * `majorBytes` (buffers still in flight at a young collection are promoted, and only a full
 * one frees them).
 */
export class GarbageBound {
  private minor = 0;
  private major = 0;
  constructor(
    private readonly minorBytes = 8 * 1024 * 1024,
    private readonly majorBytes = 64 * 1024 * 1024,
  ) {}

  add(bytes: number): void {
    this.minor += bytes;
    this.major += bytes;
    if (this.minor < this.minorBytes) return;
    this.minor = 0;
    const gc = collector();
    if (!gc) return;
    if (this.major >= this.majorBytes) {
      this.major = 0;
      gc({ type: 'major' });
    } else gc({ type: 'minor' });
  }
}
