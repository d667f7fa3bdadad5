// The options every Swift daemon reads (daemon.py's run_daemon and DaemonStrategy): nice_priority,
// ionice_class, ionice_priority, user and daemonize. A bad value stops start-up naming the option;
// a daemon started with them runs every one of its threads at that nice value and I/O class (read
// back from /proc and util-linux's ionice); one started as root goes on as the configured user,
// and writes its files as that user; daemonize = false makes one pass and exits, as --once.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { threadNice } from '../helpers/threads.js';
import { LoopbackCluster } from '../../src/demo/cluster.js';
import { parseReconstructorConfig } from '../../src/reconstructor/config.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;
/** a small loopback cluster of fragmend object servers (one per test that changes its files) */
const SMALL_CLUSTER = { nodes: 6, devicesPerNode: 1, partPower: 3, policies: [{ index: 1, name: 'ec42', ecType: 'liberasurecode_rs_vand', k: 4, m: 2 }] } as const;

describe("Swift's daemon options", () => {
  const parse = (extra: Record<string, string>) => parseReconstructorConfig({ devices: '/srv/node', ...extra }, 'object-server.conf');

  it('are read as Swift names them, and left alone when unset', () => {
    expect(parse({})).toMatchObject({ nicePriority: null, ioniceClass: null, ionicePriority: 0, user: 'swift', daemonize: true });
    expect(parse({ user: 'swiftops', daemonize: 'no' })).toMatchObject({ user: 'swiftops', daemonize: false });
    expect(parse({ nice_priority: '10', ionice_class: 'IOPRIO_CLASS_BE', ionice_priority: '7' })).toMatchObject({ nicePriority: 10, ioniceClass: 'IOPRIO_CLASS_BE', ionicePriority: 7 });
    expect(parse({ nice_priority: '-20', ionice_class: 'IOPRIO_CLASS_IDLE' })).toMatchObject({ nicePriority: -20, ioniceClass: 'IOPRIO_CLASS_IDLE' });
  });

  it('a bad value stops start-up with a message naming the option', () => {
    expect(() => parse({ nice_priority: 'low' })).toThrow(/nice_priority must be an integer >= -20 and <= 19, not "low"/);
    expect(() => parse({ nice_priority: '20' })).toThrow(/nice_priority must be an integer >= -20 and <= 19/);
    expect(() => parse({ ionice_class: 'idle' })).toThrow(/ionice_class must be one of IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE, not "idle"/);
    expect(() => parse({ ionice_class: 'IOPRIO_CLASS_BE', ionice_priority: '8' })).toThrow(/ionice_priority must be an integer >= 0 and <= 7, not "8"/);
  });
});

/**
 * Runs `fragmend reconstructor conf` as a daemon until its first pass is complete, hands its pid
 * to check, then stops it with SIGTERM and expects a clean exit; returns what it logged.
 */
async function daemon(conf: string, check: (pid: number, logged: string) => Promise<void> | void): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'reconstructor', conf, '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  try {
    for (let i = 0; i < 150 && !/Object reconstruction complete\./.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toMatch(/Object reconstruction complete\./);
    await check(child.pid!, out);
  } finally {
    child.kill('SIGTERM');
  }
  expect(await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))).toBe(0);
  return out;
}

describe('a reconstructor daemon started with them', () => {
  let cluster: LoopbackCluster;
  beforeAll(async () => {
    cluster = await LoopbackCluster.create(SMALL_CLUSTER);
    await cluster.startAll();
    for (let i = 0; i < 4; i++) await cluster.putObject(1, 'AUTH_p', 'c', `o${i}`, new Uint8Array(5000 + i).fill(i));
  }, 60_000);
  afterAll(async () => cluster?.destroy());

  async function daemonWith(extra: Record<string, string>, check: (pid: number, logged: string) => Promise<void> | void) {
    const base = cluster.nodes[0]!.conf;
    const conf = `${base}.priority.conf`;
    const lines = Object.entries(extra).map(([k, v]) => `${k} = ${v}`);
    writeFileSync(conf, readFileSync(base, 'utf8').replace('[object-reconstructor]', ['[object-reconstructor]', ...lines].join('\n')));
    return daemon(conf, check);
  }

  it('runs every thread at nice_priority, in the idle I/O class, and finishes its passes', async () => {
    const out = await daemonWith({ nice_priority: '7', ionice_class: 'IOPRIO_CLASS_IDLE' }, async (pid) => {
      const nice = threadNice(pid);
      expect(nice.length).toBeGreaterThan(3);
      expect(new Set(nice)).toEqual(new Set([7]));
      const tids = readdirSync(`/proc/${pid}/task`);
      const { stdout } = await run('ionice', ['-p', ...tids]);
      expect(stdout.trim().split('\n')).toEqual(tids.map(() => 'idle'));
    });
    expect(out).toMatch(/set nice priority to 7/);
    expect(out).toMatch(/set ionice class IOPRIO_CLASS_IDLE priority 0/);
    expect(out).not.toMatch(/Unable to modify/);
  }, 60_000);

  it('worker processes run at the nice value and I/O class they were started with', async () => {
    const out = await daemonWith({ nice_priority: '5', ionice_class: 'IOPRIO_CLASS_BE', ionice_priority: '4', reconstructor_workers: '1' }, async (_parent, logged) => {
      const worker = Number(/Started worker 1 \(pid (\d+)\)/.exec(logged)?.[1]);
      expect(worker).toBeGreaterThan(0);
      expect(new Set(threadNice(worker))).toEqual(new Set([5]));
      const tids = readdirSync(`/proc/${worker}/task`);
      const { stdout } = await run('ionice', ['-p', ...tids]);
      expect(new Set(stdout.trim().split('\n'))).toEqual(new Set(['best-effort: prio 4']));
    });
    expect(out).not.toMatch(/Unable to modify/);
  }, 60_000);

  it('daemonize = false makes one pass and exits, as --once does', async () => {
    const base = cluster.nodes[1]!.conf;
    const conf = `${base}.once.conf`;
    writeFileSync(conf, readFileSync(base, 'utf8').replace('[object-reconstructor]', '[object-reconstructor]\ndaemonize = false'));
    const { stdout } = await run(process.execPath, [BIN, 'reconstructor', conf], { timeout: 30_000 });
    expect(stdout).toMatch(/Object reconstruction complete \(once\)/);
    expect(stdout).not.toMatch(/daemon mode/);
    expect(JSON.parse(readFileSync(join(cluster.nodes[1]!.reconCache, 'object.recon'), 'utf8'))).toHaveProperty('object_reconstruction_last');
  }, 60_000);

  it('sets a best-effort I/O priority within its class, and leaves nice alone when unset', async () => {
    await daemonWith({ ionice_class: 'IOPRIO_CLASS_BE', ionice_priority: '6' }, async (pid) => {
      expect(new Set(threadNice(pid))).toEqual(new Set([0]));
      const { stdout } = await run('ionice', ['-p', String(pid)]);
      expect(stdout.trim()).toBe('best-effort: prio 6');
    });
  }, 60_000);
});

describe('a refused setting', () => {
  it('is logged and the daemon goes on unchanged, as Swift does', async () => {
    // Lowering the nice value needs a privilege this child is made to lack: its soft and hard
    // RLIMIT_NICE allow no value below its own (util-linux prlimit, as Debian installs it).
    const dir = join(process.env.TMPDIR ?? '/tmp', `fragmend-prio-${process.pid}`);
    const conf = `${dir}.conf`;
    writeFileSync(conf, `[DEFAULT]\ndevices = ${dir}-devices\nmount_check = false\nswift_dir = ${dir}-nonexistent\nuser = ${userInfo().username}\n[object-reconstructor]\nnice_priority = -5\n`);
    // (root also drops the capability that overrides the limit, with util-linux setpriv)
    const asRoot = process.getuid?.() === 0 ? ['setpriv', '--inh-caps=-all', '--bounding-set=-all'] : [];
    const r = await run('prlimit', ['--nice=0:0', '--', ...asRoot, process.execPath, BIN, 'reconstructor', conf, '--once']).catch((e) => e);
    rmSync(conf, { force: true });
    // start-up goes on past the refusal and stops later, at the missing swift.conf
    expect(`${r.stdout}${r.stderr}`).toMatch(/Unable to modify scheduling priority of process \(nice_priority = -5\)\. Keeping unchanged!/);
    expect(`${r.stdout}${r.stderr}`).toMatch(/swift\.conf/);
  }, 30_000);
});

describe('user', () => {
  it('a user the system does not know stops start-up naming it', async () => {
    const dir = join(process.env.TMPDIR ?? '/tmp', `fragmend-user-${process.pid}`);
    const conf = `${dir}.conf`;
    writeFileSync(conf, `[DEFAULT]\ndevices = ${dir}-devices\nmount_check = false\nswift_dir = ${dir}-nonexistent\nuser = no-such-user-fragmend\n[object-reconstructor]\n`);
    const r = await run(process.execPath, [BIN, 'reconstructor', conf, '--once']).catch((e) => e);
    rmSync(conf, { force: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/user = no-such-user-fragmend: no such user/);
  });

  it('root goes on as the configured user, and what it writes belongs to that user; anyone else cannot become another user', async () => {
    const cluster = await LoopbackCluster.create(SMALL_CLUSTER);
    try {
      await cluster.startAll();
      const n = cluster.nodes[0]!;
      const target = process.getuid!() === 0 ? 'nobody' : 'root';
      const conf = `${n.conf}.user.conf`;
      writeFileSync(conf, readFileSync(n.conf, 'utf8').replace(/^user = .*$/m, `user = ${target}`));
      if (target === 'nobody') {
        // the operator's part: the devices and the recon cache belong to the daemon's user
        const nobody = { uid: 65534, gid: 65534 };
        for (const d of [cluster.root, n.devicesRoot]) chmodSync(d, 0o755);
        for (const d of [n.devicesRoot, join(n.devicesRoot, n.devices[0]!), n.reconCache]) chownSync(d, nobody.uid, nobody.gid);
        const out = await daemon(conf, (pid) => {
          const status = readFileSync(`/proc/${pid}/status`, 'utf8');
          expect(status).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
          expect(status).toMatch(/^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
          expect(statSync(join(n.reconCache, 'object.recon')).uid).toBe(nobody.uid);
        });
        expect(out).toMatch(/running as nobody/);
      } else {
        const r = await run(process.execPath, [BIN, 'reconstructor', conf, '--once']).catch((e) => e);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`user = root: running as ${userInfo().username}, not as root, this process cannot become root`);
      }
    } finally {
      await cluster.destroy();
    }
  }, 60_000);
});
