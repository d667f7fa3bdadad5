// `fragmend codec ...`: encode a file into fragment archives, decode an object from any k of
// them, rebuild one archive, and show a fragment's header. Segment by segment, as Swift's
// proxy and reconstructor do, so memory does not grow with the object.
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Argv } from 'yargs';
import { ECDriver, EC_TYPES, type ECType } from '../codec/index.js';
import { ArchiveReader } from './archive.js';

interface PolicyArgs {
  'ec-type': string;
  k: number;
  m: number;
  checksum: string;
}

const policyOptions = (y: Argv) =>
  y
    .option('ec-type', { type: 'string', default: 'liberasurecode_rs_vand', choices: EC_TYPES, describe: 'liberasurecode backend' })
    .option('k', { type: 'number', default: 4, describe: 'data fragments (ec_num_data_fragments)' })
    .option('m', { type: 'number', default: 2, describe: 'parity fragments (ec_num_parity_fragments)' })
    .option('checksum', { type: 'string', default: 'none', choices: ['none', 'inline_crc32'] });

const driverFor = (a: PolicyArgs) =>
  ECDriver.create({ ecType: a['ec-type'] as ECType, k: a.k, m: a.m, chksumType: a.checksum as 'none' | 'inline_crc32' });

async function encodeFile(a: PolicyArgs & { input: string; outdir: string; 'segment-size': number }): Promise<void> {
  const ec = await driverFor(a);
  const n = ec.k + ec.m;
  const input = await open(a.input, 'r');
  const { size } = await input.stat();
  const segmentSize = a['segment-size'];
  const outs = await Promise.all(Array.from({ length: n }, (_, i) => open(join(a.outdir, `${basename(a.input)}#${i}`), 'w')));
  let segments = 0;
  try {
    // As Swift's proxy does: whole segments, then the remainder; an empty object has no fragments.
    for (let pos = 0; pos < size; pos += segmentSize, segments++) {
      const seg = new Uint8Array(Math.min(segmentSize, size - pos));
      await input.read(seg, 0, seg.length, pos);
      const frags = ec.encode(seg);
      await Promise.all(frags.map((f, i) => outs[i]!.write(f)));
    }
    console.log(JSON.stringify({ object: a.input, bytes: size, segments, archives: outs.length, outdir: a.outdir }));
  } finally {
    await Promise.all([input.close(), ...outs.map((o) => o.close())]);
  }
}

/** One segment's fragments from every archive; null when all have ended together. */
async function nextSegment(readers: ArchiveReader[], segment: number): Promise<Uint8Array[] | null> {
  const frags = await Promise.all(readers.map((r) => r.next()));
  const ended = readers.filter((_, i) => frags[i] === null);
  if (ended.length === readers.length) return null;
  if (ended.length > 0) {
    throw new Error(`${ended.map((r) => r.path).join(', ')} ended after ${segment} segments while other archives go on`);
  }
  return frags as Uint8Array[];
}

async function decodeArchives(a: PolicyArgs & { archives: string[]; output: string }): Promise<void> {
  const ec = await driverFor(a);
  const readers = await Promise.all(a.archives.map((p) => ArchiveReader.open(p)));
  const out = await open(a.output, 'w');
  let bytes = 0;
  try {
    for (let s = 0; ; s++) {
      const frags = await nextSegment(readers, s);
      if (!frags) break;
      const seg = ec.decode(frags);
      await out.write(seg);
      bytes += seg.length;
    }
  } finally {
    await Promise.all([out.close(), ...readers.map((r) => r.close())]);
  }
  console.log(JSON.stringify({ output: a.output, bytes }));
}

async function reconstructArchive(a: PolicyArgs & { archives: string[]; index: number; output: string }): Promise<void> {
  const ec = await driverFor(a);
  const readers = await Promise.all(a.archives.map((p) => ArchiveReader.open(p)));
  const out = await open(a.output, 'w');
  let segments = 0;
  try {
    for (;;) {
      const frags = await nextSegment(readers, segments);
      if (!frags) break;
      const [rebuilt] = ec.reconstruct(frags, [a.index]);
      await out.write(rebuilt!);
      segments++;
    }
  } finally {
    await Promise.all([out.close(), ...readers.map((r) => r.close())]);
  }
  console.log(JSON.stringify({ output: a.output, index: a.index, segments }));
}

async function showInfo(a: PolicyArgs & { archive: string }): Promise<void> {
  const ec = await driverFor(a);
  const r = await ArchiveReader.open(a.archive);
  try {
    const first = await r.next();
    if (!first) throw new Error(`${a.archive} is empty`);
    let fragments = 1;
    while (await r.next()) fragments++;
    console.log(JSON.stringify({ archive: a.archive, bytes: r.size, fragments, firstHeader: ec.getMetadata(first) }, null, 2));
  } finally {
    await r.close();
  }
}

export function codecCommand(y: Argv): Argv {
  return y.command('codec', 'Encode, decode and rebuild Swift fragment archives', (c) =>
    policyOptions(c)
      .command(
        'encode <input> <outdir>',
        'Encode a file into k+m fragment archives (<outdir>/<name>#<index>)',
        (b) => b.positional('input', { type: 'string', demandOption: true }).positional('outdir', { type: 'string', demandOption: true })
          .option('segment-size', { type: 'number', default: 1048576, describe: 'ec_object_segment_size' }),
        (argv) => encodeFile(argv as never),
      )
      .command(
        'decode <archives..>',
        'Decode the object from any k (or more) fragment archives',
        (b) => b.positional('archives', { type: 'string', array: true, demandOption: true })
          .option('output', { alias: 'o', type: 'string', demandOption: true }),
        (argv) => decodeArchives(argv as never),
      )
      .command(
        'reconstruct <archives..>',
        'Rebuild the fragment archive of one index from the others',
        (b) => b.positional('archives', { type: 'string', array: true, demandOption: true })
          .option('index', { type: 'number', demandOption: true, describe: 'fragment index to rebuild' })
          .option('output', { alias: 'o', type: 'string', demandOption: true }),
        (argv) => reconstructArchive(argv as never),
      )
      .command(
        'info <archive>',
        "Show a fragment archive's first header and fragment count",
        (b) => b.positional('archive', { type: 'string', demandOption: true }),
        (argv) => showInfo(argv as never),
      )
      .demandCommand(1, 'name a codec command: encode, decode, reconstruct or info'),
  );
}
