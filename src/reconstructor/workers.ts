// reconstructor_workers > 0: one child process per share of the local devices (split evenly, as
// Swift's distribute_evenly does), a dead child respawned, all of them re-spawned when the ring's
// set of local devices changes. In --once mode the parent waits for every child, then folds
// their per-disk recon entries into the node's object_reconstruction_time/last.
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ReconstructorConfig } from './config.js';
import { ObjectReconstructor } from './reconstructor.js';
import { dumpReconCache, RECON_OBJECT_FILE } from './recon.js';
import { readFile } from '../swift/afs.js';

const HEALTHCHECK_INTERVAL = 5000;

export function distributeEvenly<T>(items: T[], n: number): T[][] {
  const out: T[][] = Array.from({ length: n }, () => []);
  items.forEach((it, i) => out[i % n]!.push(it));
  return out;
}

export async function runWorkers(conf: ReconstructorConfig, log: Logger, opts: { once: boolean; devices: string[]; partitions: number[]; argv: string[] }): Promise<number> {
  const probe = new ObjectReconstructor(conf, log);
  await probe.init();
  let devices = probe.localDeviceNames().filter((d) => !opts.devices.length || opts.devices.includes(d));
  const script = opts.argv[0]!;
  const baseArgs = opts.argv.slice(1).filter((a, i, all) => !['-d', '--devices'].includes(a) && !['-d', '--devices'].includes(all[i - 1] ?? ''));
  let stopping = false;
  const children = new Map<number, { proc: ChildProcess; devices: string[] }>();

  const spawnAll = () => {
    const shares = distributeEvenly(devices, Math.min(conf.reconstructorWorkers, Math.max(devices.length, 1))).filter((s) => s.length);
    shares.forEach((share, i) => spawnOne(i, share));
  };
  const spawnOne = (i: number, share: string[]) => {
    const { fork } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    const proc = fork(script, [...baseArgs, '--worker-index', String(i), '--devices', share.join(',')], { stdio: 'inherit' });
    children.set(i, { proc, devices: share });
    log.info(`Started worker ${i + 1} (pid ${proc.pid}) for devices ${share.join(',')}`);
  };
  const exitOf = (proc: ChildProcess) => new Promise<number>((resolve) => (proc.exitCode !== null ? resolve(proc.exitCode) : proc.once('exit', (c) => resolve(c ?? 1))));

  const onSignal = () => {
    stopping = true;
    for (const { proc } of children.values()) proc.kill('SIGTERM');
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  spawnAll();
  try {
    if (opts.once) {
      const codes = await Promise.all([...children.values()].map(({ proc }) => exitOf(proc)));
      await aggregateRecon(conf, devices);
      return codes.every((c) => c === 0) ? 0 : 1;
    }
    while (!stopping) {
      await new Promise((r) => setTimeout(r, HEALTHCHECK_INTERVAL));
      if (stopping) break;
      const now = (await probe.init().then(() => probe.localDeviceNames()).catch(() => devices)).filter((d) => !opts.devices.length || opts.devices.includes(d));
      if (now.join(',') !== devices.join(',')) {
        log.info(`Local devices changed (${devices.join(',')} -> ${now.join(',')}): respawning workers`);
        devices = now;
        for (const { proc } of children.values()) proc.kill('SIGTERM');
        await Promise.all([...children.values()].map(({ proc }) => exitOf(proc)));
        children.clear();
        spawnAll();
        continue;
      }
      for (const [i, c] of children) {
        if (c.proc.exitCode !== null || c.proc.signalCode !== null) {
          log.warn(`Worker ${i + 1} (pid ${c.proc.pid}) died; respawning`);
          spawnOne(i, c.devices);
        }
      }
      await aggregateRecon(conf, devices);
    }
    await Promise.all([...children.values()].map(({ proc }) => exitOf(proc)));
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await probe.close();
  }
}

/** Swift's aggregate_recon_update: node-wide time and last once every local device reported. */
export async function aggregateRecon(conf: ReconstructorConfig, devices: string[]): Promise<void> {
  const file = join(conf.reconCachePath, RECON_OBJECT_FILE);
  let entry: Record<string, unknown> = {};
  try {
    entry = JSON.parse((await readFile(file, 'utf8')).split('\n')[0] ?? '{}');
  } catch {
    return;
  }
  const perDisk = (entry.object_reconstruction_per_disk ?? {}) as Record<string, { object_reconstruction_time: number; object_reconstruction_last: number }>;
  const update: Record<string, unknown> = {};
  const stale = Object.keys(perDisk).filter((d) => !devices.includes(d));
  if (stale.length) update.object_reconstruction_per_disk = Object.fromEntries(stale.map((d) => [d, {}]));
  if (devices.length && devices.every((d) => perDisk[d])) {
    const entries = devices.map((d) => perDisk[d]!);
    const last = Math.max(...entries.map((e) => e.object_reconstruction_last));
    const first = Math.min(...entries.map((e) => e.object_reconstruction_last - e.object_reconstruction_time * 60));
    update.object_reconstruction_time = (last - first) / 60;
    update.object_reconstruction_last = last;
  }
  if (Object.keys(update).length) await dumpReconCache(update as never, file);
}
