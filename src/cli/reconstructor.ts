// `fragmend reconstructor <object-server.conf> [--once] [-d devs] [-p parts] [-v]`: the drop-in
// for swift-object-reconstructor, reading the same config file and writing the same recon cache.
import pino from 'pino';
import type { Argv } from 'yargs';
import { loadReconstructorConfig } from '../reconstructor/config.js';
import { startMetricsServer } from '../reconstructor/metrics.js';
import { dropPrivileges, modifyPriority } from '../swift/priority.js';
import { ObjectReconstructor } from '../reconstructor/reconstructor.js';
import { runWorkers } from '../reconstructor/workers.js';

const LEVELS: Record<string, string> = { DEBUG: 'debug', INFO: 'info', WARNING: 'warn', WARN: 'warn', ERROR: 'error', CRITICAL: 'fatal' };
const csv = (s?: string) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);

export async function runReconstructor(a: { conf: string; once: boolean; devices?: string; partitions?: string; verbose: boolean; 'worker-index'?: number }): Promise<number> {
  const conf = await loadReconstructorConfig(a.conf);
  const log = pino({
    name: conf.logName,
    level: a.verbose ? 'debug' : (LEVELS[conf.logLevel] ?? 'info'),
    base: { pid: process.pid, ...(a['worker-index'] !== undefined ? { worker: `${a['worker-index'] + 1}/${conf.reconstructorWorkers}` } : {}) },
  });
  // as Swift's daemons do, before anything else starts: the priority first, which root may
  // raise, then the user the process goes on as. A worker process inherits both from the
  // process that started it (setting the priority again could only be refused once root is gone).
  if (a['worker-index'] === undefined) modifyPriority(conf, log);
  dropPrivileges(conf.user, log);
  // daemonize = false runs one pass, as --once does (Swift's run_daemon)
  const once = a.once || !conf.daemonize;
  const devices = csv(a.devices);
  const partitions = csv(a.partitions).map(Number);
  if (partitions.some((p) => !Number.isInteger(p) || p < 0)) throw new Error(`-p takes partition numbers, got ${JSON.stringify(a.partitions)}`);
  if (conf.reconstructorWorkers > 0 && a['worker-index'] === undefined) {
    return runWorkers(conf, log, { once, devices, partitions, argv: process.argv.slice(1) });
  }
  const r = new ObjectReconstructor(conf, log);
  await r.init();
  const stop = () => {
    log.info('SIGTERM received: finishing the jobs in flight, then exiting');
    r.stop();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const metrics = conf.metricsPort ? await startMetricsServer(r, conf.metricsBindIp, conf.metricsPort) : null;
  if (metrics) log.info(`Serving Prometheus metrics on http://${conf.metricsBindIp}:${conf.metricsPort}/metrics`);
  try {
    if (once) await r.runOnce({ devices, partitions });
    else await r.runForever({ devices });
  } finally {
    metrics?.close();
    await r.close();
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
  return 0;
}

/** The command's positional and options (also what src/cli/fast-args.ts reads without yargs). */
export const reconstructorOptions = (b: Argv) =>
  b
    .positional('conf', { type: 'string', demandOption: true, describe: 'object-server.conf (or a conf.d directory)' })
    .option('once', { type: 'boolean', default: false, describe: 'run one pass and exit' })
    .option('devices', { alias: 'd', type: 'string', describe: 'only these devices (comma-separated; with --once)' })
    .option('partitions', { alias: 'p', type: 'string', describe: 'only these partitions (comma-separated; with --once)' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log at debug level' })
    .option('worker-index', { type: 'number', hidden: true });

export function reconstructorCommand(y: Argv): Argv {
  return y.command(
    'reconstructor <conf>',
    'Rebuild EC fragments and revert handoffs on this Swift storage node (swift-object-reconstructor)',
    reconstructorOptions,
    async (argv) => {
      process.exitCode = await runReconstructor(argv as never);
    },
  );
}
