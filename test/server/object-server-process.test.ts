// `fragmend object-server` as Swift's run_wsgi starts an object server: nice_priority,
// ionice_class and ionice_priority on every thread, then the port, then the process goes on as
// `user`. Read back from /proc and util-linux's ionice while the server answers requests.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { threadNice } from '../helpers/threads.js';
import { LoopbackCluster } from '../../src/demo/cluster.js';
import { objectServerOptionsFromConf } from '../../src/server/object-server.js';
import { swiftHttp } from '../helpers/swift-cluster.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;
const asRoot = process.getuid?.() === 0;

describe("the object server's process options", () => {
  const parse = (extra: Record<string, string>) => objectServerOptionsFromConf({ devices: '/srv/node', ...extra }, 'object-server.conf');

  it('are read as Swift names them, with its defaults', () => {
    expect(parse({})).toMatchObject({ user: 'swift', nicePriority: null, ioniceClass: null, ionicePriority: 0, workers: 'auto', serversPerPort: 0 });
    expect(parse({ workers: '4', servers_per_port: '2' })).toMatchObject({ workers: '4', serversPerPort: 2 });
    expect(parse({ user: 'swiftops', nice_priority: '-3', ionice_class: 'IOPRIO_CLASS_BE', ionice_priority: '2' })).toMatchObject({
      user: 'swiftops',
      nicePriority: -3,
      ioniceClass: 'IOPRIO_CLASS_BE',
      ionicePriority: 2,
    });
  });

  it('a bad value stops start-up naming the option', () => {
    expect(() => parse({ nice_priority: '99' })).toThrow(/nice_priority must be an integer >= -20 and <= 19, not "99"/);
    expect(() => parse({ ionice_class: 'BE' })).toThrow(/ionice_class must be one of IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE, not "BE"/);
  });
});

describe('fragmend object-server started with them', () => {
  let cluster: LoopbackCluster;
  const confs: string[] = [];
  beforeAll(async () => {
    cluster = await LoopbackCluster.create({ nodes: 6, devicesPerNode: 1, partPower: 3, policies: [{ index: 1, name: 'ec42', ecType: 'liberasurecode_rs_vand', k: 4, m: 2 }] });
  }, 60_000);
  afterAll(async () => {
    for (const c of confs) rmSync(c, { force: true });
    await cluster?.destroy();
  });

  /** node 0's conf with the healthcheck filter in its pipeline and these lines in [app:object-server] */
  function confWith(user: string, app: Record<string, string>): string {
    const n = cluster.nodes[0]!;
    const conf = `${n.conf}.process-${confs.length}.conf`;
    const text = readFileSync(n.conf, 'utf8')
      .replace(/^user = .*$/m, `user = ${user}`)
      .replace(/^pipeline = .*$/m, 'pipeline = healthcheck object-server')
      .replace('[app:object-server]', ['[filter:healthcheck]', 'use = egg:swift#healthcheck', '', '[app:object-server]', ...Object.entries(app).map(([k, v]) => `${k} = ${v}`)].join('\n'));
    writeFileSync(conf, text);
    confs.push(conf);
    return conf;
  }

  /** `fragmend object-server conf` on a free port, once it says it started; its output so far on demand. */
  async function started(conf: string, ...args: string[]) {
    const child = spawn(process.execPath, [BIN, 'object-server', conf, '--bind-port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let port = 0;
    for (let i = 0; i < 150 && !port; i++) {
      port = Number(/Started object server on [\d.]+:(\d+)/.exec(out)?.[1] ?? 0);
      if (!port) await new Promise((r) => setTimeout(r, 100));
    }
    if (!port) child.kill('SIGTERM');
    expect(port, out).toBeGreaterThan(0);
    return { child, port, output: () => out };
  }

  it('runs every thread at nice_priority and in the I/O class, and as root goes on as user, while it serves', async () => {
    const user = asRoot ? 'nobody' : userInfo().username;
    const conf = confWith(user, { nice_priority: '6', ionice_class: 'IOPRIO_CLASS_IDLE' });
    const { child, port, output } = await started(conf, '-v');
    try {
      const hc = await swiftHttp(port, 'GET', '/healthcheck');
      expect([hc.status, hc.body.toString()]).toEqual([200, 'OK']);
      const pid = child.pid!;
      const nice = threadNice(pid);
      expect(nice.length).toBeGreaterThan(3);
      expect(new Set(nice)).toEqual(new Set([6]));
      const tids = readdirSync(`/proc/${pid}/task`);
      const { stdout } = await run('ionice', ['-p', ...tids]);
      expect(stdout.trim().split('\n')).toEqual(tids.map(() => 'idle'));
      if (asRoot) {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        expect(status).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
        expect(status).toMatch(/^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
        expect(output()).toMatch(/running as nobody/);
      }
      expect(output()).not.toMatch(/Unable to modify/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))).toBe(0);
  }, 60_000);

  it('workers other than 0 are said to be served by one process, and the server serves', async () => {
    const conf = confWith(userInfo().username, { workers: '4' });
    const { child, port, output } = await started(conf);
    try {
      expect(output()).toMatch(/workers = 4: fragmend's object server serves in one process/);
      expect((await swiftHttp(port, 'GET', '/healthcheck')).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))).toBe(0);
  }, 60_000);

  it('one not started as root cannot become another user, and stops saying so', async () => {
    // as root, the server is started as nobody (util-linux setpriv) and asked to become root
    const conf = confWith('root', {});
    // nobody reads the conf and swift.conf under the cluster's directory (made 0700)
    if (asRoot) chmodSync(cluster.root, 0o755);
    const prefix = asRoot ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'] : [];
    const [cmd, ...args] = [...prefix, process.execPath, BIN, 'object-server', conf, '--bind-port', '0'];
    const r = await run(cmd!, args, { timeout: 30_000 }).catch((e) => e);
    const me = asRoot ? 'nobody' : userInfo().username;
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(1);
    expect(r.stderr).toContain(`user = root: running as ${me}, not as root, this process cannot become root`);
  }, 30_000);
});
