// `fragmend demo`: a loopback cluster of fragmend object servers (8 nodes, 16 devices, an EC 4+2
// liberasurecode_rs_vand policy and a 10+4 isa_l_rs_vand one), a few hundred objects written as
// Swift's proxy writes them, one device wiped, and the reconstructor run once on the other nodes
// until every fragment archive is back, byte-identical. Every number printed is measured.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import type { Argv } from 'yargs';
import { LoopbackCluster } from '../demo/cluster.js';
import { parseReconstructorConfig } from '../reconstructor/config.js';
import { ObjectReconstructor } from '../reconstructor/reconstructor.js';
import { readConf } from '../swift/conf.js';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const mib = (n: number) => (n / 1048576).toFixed(1);
const tty = process.stdout.isTTY;

function bar(label: string, done: number, total: number): void {
  const width = 30;
  const filled = total ? Math.round((done / total) * width) : width;
  const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
  if (tty) process.stdout.write(`\r${line}`);
}

function endBar(label: string, done: number, total: number, extra = ''): void {
  if (tty) process.stdout.write('\r\x1b[2K');
  console.log(`${label}: ${done}/${total}${extra}`);
}

/** A deterministic object body: sizes skewed like a real cluster (mostly small, some MiBs). */
function objectBody(i: number): Buffer {
  const sizes = [0, 1, 17, 900, 4096, 65536 + 3, 300_000, 1048576, 1048576 + 17, 2_500_000];
  const size = i % 7 === 0 ? sizes[(i >> 3) % sizes.length]! : 1 + ((i * 7919) % 200_000);
  const b = Buffer.alloc(size);
  let x = (i + 1) * 2654435761;
  for (let j = 0; j < size; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[j] = x & 0xff;
  }
  return b;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.name.endsWith('.data')) out.push(p);
  }
  return out;
}

export async function runDemo(a: { objects: number; keep: boolean }): Promise<number> {
  const started = Date.now();
  /** the cluster's directory stays after the demo (its log with it) */
  const keepDir = !!process.env.FRAGMEND_DEMO_KEEP_DIR;
  const cluster = await LoopbackCluster.create({
    nodes: 8,
    devicesPerNode: 2,
    partPower: 8,
    policies: [
      { index: 1, name: 'ec42', ecType: 'liberasurecode_rs_vand', k: 4, m: 2 },
      { index: 2, name: 'ec104', ecType: 'isa_l_rs_vand', k: 10, m: 4 },
    ],
  });
  let interrupted = false;
  const cleanup = async () => {
    await cluster.destroy().catch(() => undefined);
  };
  const onSigint = () => {
    interrupted = true;
    console.log('\ninterrupted: stopping the cluster and removing it');
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  try {
    console.log(`fragmend demo: a loopback Swift EC cluster of 8 fragmend object servers in ${cluster.root}`);
    console.log('  policies: ec42 = liberasurecode_rs_vand 4+2, ec104 = isa_l_rs_vand 10+4; rings of 256 partitions over 16 devices');
    await cluster.startAll();

    // 1. Objects, placed as Swift's proxy places them.
    const objects: Array<{ policy: number; name: string; md5: string; size: number; archives: Array<{ device: string; file: string; md5: string; size: number }> }> = [];
    let bytes = 0;
    for (let i = 0; i < a.objects && !interrupted; i++) {
      const policy = i % 3 === 2 ? 2 : 1;
      const body = objectBody(i);
      const name = `obj-${String(i).padStart(4, '0')}`;
      const archives = await cluster.putObject(policy, 'AUTH_demo', policy === 1 ? 'photos' : 'backups', name, body);
      objects.push({ policy, name, md5: md5(body), size: body.length, archives });
      bytes += body.length;
      if (i % 10 === 0) bar('writing objects', i + 1, a.objects);
    }
    endBar('objects written', objects.length, a.objects, ` (${mib(bytes)} MiB, ${objects.reduce((s, o) => s + o.archives.length, 0)} fragment archives)`);

    // 2. Lose a device.
    const victim = cluster.nodes[3]!;
    const device = victim.devices[1]!;
    const lost = objects.flatMap((o) => o.archives.filter((x) => x.device === device).map((x) => ({ ...x, object: o })));
    const lostBytes = lost.reduce((s, x) => s + x.size, 0);
    const devPath = join(victim.devicesRoot, device);
    for (const e of await readdir(devPath)) await rm(join(devPath, e), { recursive: true, force: true });
    console.log(`device ${device} on node ${victim.index} wiped: ${lost.length} fragment archives (${mib(lostBytes)} MiB) gone`);

    // 3. The reconstructor, once, on every other node (each its own daemon, all at once).
    const logFile = join(cluster.root, 'reconstructor.log');
    const log = pino({ level: 'info' }, createWriteStream(logFile));
    const daemons: ObjectReconstructor[] = [];
    for (const n of cluster.nodes.filter((n) => n !== victim)) {
      const conf = parseReconstructorConfig(await readConf(n.conf, 'object-reconstructor'), n.conf);
      const r = new ObjectReconstructor(conf, log.child({ node: n.index }));
      await r.init();
      daemons.push(r);
    }
    const t0 = Date.now();
    // Like the daemons' periodic passes: a session refused by a busy receiver is retried on the next one.
    const missing = async () => {
      let n = 0;
      for (const x of lost) if (!(await stat(x.file).catch(() => null))) n++;
      return n;
    };
    let rebuilt = 0;
    let rebuiltBytes = 0;
    let pass = 0;
    let partitions = 0;
    for (; pass < 5 && (await missing()) > 0 && !interrupted; pass++) {
      const progress = setInterval(() => {
        const done = daemons.reduce((s, d) => s + d.stats.reconstructionPartCount, 0);
        const total = daemons.reduce((s, d) => s + d.stats.partCount, 0);
        bar(`reconstruction pass ${pass + 1}`, done, total);
      }, 200);
      const passStart = Date.now();
      const passes = await Promise.all(daemons.map((d) => d.runOnce()));
      clearInterval(progress);
      const r = passes.reduce((s, p) => s + p.objectsRebuilt, 0);
      const refused = passes.reduce((s, p) => s + p.failures.ssync, 0);
      rebuilt += r;
      rebuiltBytes += passes.reduce((s, p) => s + p.bytesRebuilt, 0);
      const parts = passes.reduce((s, p) => s + p.reconstructionPartCount, 0);
      partitions += parts;
      endBar(
        `reconstruction pass ${pass + 1}`,
        parts,
        passes.reduce((s, p) => s + p.partCount, 0),
        ` partitions, ${r} archives rebuilt in ${((Date.now() - passStart) / 1000).toFixed(2)} s${refused ? `, ${refused} SSYNC sessions refused by busy receivers (retried next pass)` : ''}`,
      );
    }
    const seconds = (Date.now() - t0) / 1000;
    await Promise.all(daemons.map((d) => d.close()));

    // 4. Check: every lost archive back with the same bytes, every object decodes.
    let restored = 0;
    for (const x of lost) {
      const st = await stat(x.file).catch(() => null);
      if (st && md5(await readFile(x.file)) === x.md5) restored++;
    }
    let decoded = 0;
    for (const o of objects) {
      const files = o.archives.map((x) => x.file);
      if (md5(await cluster.readObject(o.policy, files).catch(() => new Uint8Array(0))) === o.md5) decoded++;
    }
    const stray = (await filesUnder(devPath)).length - restored;
    const ok = restored === lost.length && decoded === objects.length;
    console.log('');
    console.log(ok ? 'healed.' : 'NOT healed.');
    console.log(`  fragment archives restored byte-identical: ${restored}/${lost.length}${stray > 0 ? ` (+${stray} unexpected)` : ''}`);
    console.log(`  objects that decode to their original bytes: ${decoded}/${objects.length}`);
    // The time is mostly the walk: every partition's partners asked for their hashes (a few
    // thousand requests), and the archives here are small. A byte rate would say little.
    const per = (n: number) => (n / Math.max(seconds, 1e-3)).toFixed(0);
    console.log(`  rebuilt ${rebuilt} archives, ${mib(rebuiltBytes)} MiB, in ${seconds.toFixed(2)} s over ${pass} pass${pass === 1 ? '' : 'es'} of ${partitions} partitions (${per(rebuilt)} archives/s, ${per(partitions)} partitions/s)`);
    console.log(`  ${daemons.length} reconstructors and 8 object servers, all in this one process`);
    // with --keep the cluster, its log with it, runs on until Ctrl-C
    console.log(`  reconstructor log: ${a.keep || keepDir ? logFile : 'removed with the cluster (--keep leaves both)'}`);
    console.log(`  total time ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (a.keep) {
      console.log('\nThe cluster keeps running (Ctrl-C stops it and removes it). Try:');
      const n0 = cluster.nodes[0]!;
      console.log(`  node bin/fragmend.js get-nodes --swift-dir ${cluster.swiftDir} -P ec42 AUTH_demo photos obj-0000`);
      console.log(`  curl -i -X GET -H 'X-Backend-Storage-Policy-Index: 1' http://127.0.0.1:<port>/<device>/<partition>/AUTH_demo/photos/obj-0000`);
      console.log(`  node bin/fragmend.js reconstructor ${n0.conf} --once`);
      console.log(`  node bin/fragmend.js suffix-hashes --swift-dir ${cluster.swiftDir} -P 1 ${join(n0.devicesRoot, n0.devices[0]!, 'objects-1', '<partition>')}`);
      process.off('SIGINT', onSigint);
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
    return ok ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    if (!keepDir) await cleanup();
    // the directory stays, the servers do not (they would keep this process running)
    else await cluster.stopAll().catch(() => undefined);
  }
}

export function demoCommand(y: Argv): Argv {
  return y.command(
    'demo',
    'Run a loopback EC cluster of fragmend object servers, lose a device and heal it',
    (b) =>
      b
        .option('objects', { type: 'number', default: 300, describe: 'how many objects to write' })
        .option('keep', { type: 'boolean', default: false, describe: 'leave the cluster running afterwards' }),
    async (argv) => {
      process.exitCode = await runDemo(argv as never);
    },
  );
}
