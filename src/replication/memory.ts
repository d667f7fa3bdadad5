// Keeps a long stream of bytes from piling up garbage. Every socket read hands Node a fresh
// buffer whose memory lives outside V8's heap; V8 frees it only when a collection runs, and it
// starts one for outside memory only after some 64 MiB have accumulated. A rebuild reads k
// bytes for every byte it writes, so without help the process grows by that much. A
// young-generation collection every few MiB read (under a millisecond each: the heap of a
// stream is small) frees those buffers while they are still young.
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

/** Counts bytes read and collects young garbage every `everyBytes`. */
export class GarbageBound {
  private read = 0;
  constructor(private readonly everyBytes = 8 * 1024 * 1024) {}

  add(bytes: number): void {
    this.read += bytes;
    if (this.read < this.everyBytes) return;
    this.read = 0;
    collector()?.({ type: 'minor' });
  }
}
