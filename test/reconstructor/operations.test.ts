// What operators see and rely on, on a real Swift 2.30 cluster: bad config values stop start-up
// naming the option; a hung or garbling peer costs only its job; a solitary stale fragment is
// quarantined when quarantine_threshold says so; statsd gets Swift's metric names; worker mode
// splits devices and writes per-disk recon; SIGTERM lets a daemon finish and exit; /metrics.
import { execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realSwiftEnabled, SwiftSandbox, swiftHttp } from '../helpers/swift-cluster.js';
import { bytes, type NodeInfo, type Placement } from '../helpers/placement.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;

function withOverrides(conf: string, extra: Record<string, string | number>): string {
  const text = readFileSync(conf, 'utf8');
  const out = join(conf + `.${Object.keys(extra).join('-')}.conf`);
  const lines = Object.entries(extra).map(([k, v]) => `${k} = ${v}`).join('\n');
  writeFileSync(out, text.replace('[object-reconstructor]', `[object-reconstructor]\n${lines}`));
  return out;
}

describe('configuration errors', () => {
  it('a bad value stops start-up with a message naming the option; unknown options are ignored', async () => {
    const dir = join(process.env.TMPDIR ?? '/tmp', `fragmend-badconf-${process.pid}`);
    const conf = `${dir}.conf`;
    writeFileSync(conf, '[DEFAULT]\ndevices = /nonexistent\nswift_dir = /nonexistent\n[object-reconstructor]\nconcurrency = lots\nsome_future_option = 1\n');
    const r = await run(process.execPath, [BIN, 'reconstructor', conf, '--once']).catch((e) => e);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/concurrency must be an integer >= 1, not "lots"/);
    writeFileSync(conf, '[DEFAULT]\ndevices = /nonexistent\n[object-reconstructor]\nrequest_node_count = two\n');
    const r2 = await run(process.execPath, [BIN, 'reconstructor', conf, '--once']).catch((e) => e);
    expect(r2.stderr).toMatch(/Invalid request_node_count value/);
    rmSync(conf, { force: true });
  });
});

describe.skipIf(!realSwiftEnabled())('operating fragmend reconstructor on a real Swift cluster', () => {
  let sbx: SwiftSandbox;
  let proxy: number;
  const account = 'AUTH_test';
  const c = 'ops';
  const servers: Server[] = [];

  beforeAll(async () => {
    sbx = await SwiftSandbox.create({
      objectNodes: 8,
      devicesPerNode: 2,
      objectConf: { 'object-reconstructor': { http_timeout: 2, node_timeout: 2, conn_timeout: 0.5, interval: 1, stats_interval: 1 } },
    });
    await sbx.startAll();
    proxy = Number(new URL(await sbx.startProxy()).port);
    expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${c}`, { headers: { 'X-Storage-Policy': 'ec42' } })).status).toBeLessThan(300);
    for (let i = 0; i < 6; i++) expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${c}/o${i}`, { body: bytes(20_000 + i, i + 3) })).status).toBe(201);
  }, 120_000);
  afterAll(async () => {
    for (const s of servers) s.close();
    await sbx?.cleanup();
  });

  const ours = (conf: string, ...args: string[]) => run(process.execPath, [BIN, 'reconstructor', conf, '--once', ...args], { maxBuffer: 1 << 26 }).catch((e) => e);
  const placement = (object: string) => sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account, container: c, object });
  const dirOf = (p: Placement, n: NodeInfo) => join(sbx.nodeOfDevice(n.device).devicesRoot, n.device, 'objects-1', String(p.partition), p.hash.slice(-3), p.hash);

  it('a hung peer and a peer answering garbage cost only their jobs', async () => {
    const p = await placement('o0');
    const me = p.primaries[0]!;
    const victims = [p.primaries[1]!, p.primaries[5]!];
    const myNode = sbx.nodeOfDevice(me.device).index;
    const victimNodes = victims.map((v) => sbx.nodeOfDevice(v.device).index);
    for (const v of victimNodes) await sbx.stopObjectServer(v);
    // One accepts and never answers; the other answers every request with junk.
    const hung = createServer(() => undefined).listen(sbx.node(victimNodes[0]!).port, '127.0.0.1');
    const junk = createServer((sock) => sock.on('data', () => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot-a-pkl'))).listen(sbx.node(victimNodes[1]!).port, '127.0.0.1');
    servers.push(hung, junk);
    try {
      const before = readdirSync(dirOf(p, me));
      const r = await ours(sbx.node(myNode).conf, '-p', String(p.partition));
      expect(r.code ?? 0, r.stderr).toBe(0);
      const out = String(r.stdout);
      expect(out).toMatch(/Object reconstruction complete \(once\)/);
      expect(out).toMatch(/bad REPLICATE answer|Unable to get remote suffix hashes/);
      expect(readdirSync(dirOf(p, me))).toEqual(before);
    } finally {
      hung.close();
      junk.close();
      for (const v of victimNodes) await sbx.startObjectServer(v);
    }
    // Not limited to partitions, the recon file counts the failures by cause.
    const r = await ours(sbx.node(myNode).conf);
    expect(r.code ?? 0).toBe(0);
  });

  it('a partner answering 507 gets its fragment rebuilt on a handoff of the same index', async () => {
    const p = await placement('o2');
    const me = p.primaries[0]!;
    const partner = p.primaries[1]!;
    const pRoot = join(sbx.nodeOfDevice(partner.device).devicesRoot, partner.device);
    renameSync(pRoot, `${pRoot}.away`); // the object server now answers 507 for it
    try {
      const r = await ours(sbx.nodeOfDevice(me.device).conf, '-p', String(p.partition), '-d', me.device);
      expect(r.code ?? 0, r.stderr).toBe(0);
      expect(String(r.stdout)).toMatch(/responded as unmounted/);
      const stand = p.handoffs.find((h) => existsSync(dirOf(p, h)));
      expect(stand, 'a handoff received the rebuilt fragment').toBeDefined();
      expect(readdirSync(dirOf(p, stand!)).some((f) => f.endsWith(`#${partner.index}#d.data`))).toBe(true);
    } finally {
      renameSync(`${pRoot}.away`, pRoot);
    }
  });

  it('quarantines a solitary fragment older than quarantine_age when quarantine_threshold allows', async () => {
    const p = await placement('o1');
    const keep = p.primaries[3]!;
    // Every other fragment of o1 is gone, and the other nodes know it (their suffixes rehash).
    for (const n of p.primaries) {
      if (n.id === keep.id) continue;
      rmSync(dirOf(p, n), { recursive: true, force: true });
      appendFileSync(join(sbx.nodeOfDevice(n.device).devicesRoot, n.device, 'objects-1', String(p.partition), 'hashes.invalid'), `${p.hash.slice(-3)}\n`);
    }
    const node = sbx.nodeOfDevice(keep.device);
    const conf = withOverrides(node.conf, { quarantine_threshold: 1, quarantine_age: 0 });
    const r = await ours(conf, '-p', String(p.partition), '-d', keep.device);
    expect(r.code ?? 0, r.stderr).toBe(0);
    expect(String(r.stdout)).toMatch(/Quarantining solitary fragment/);
    expect(existsSync(dirOf(p, keep))).toBe(false);
    expect(readdirSync(join(node.devicesRoot, keep.device, 'quarantined', 'objects-1'))).toContain(p.hash);
  });

  it("sends Swift's statsd metric names", async () => {
    const sock = createSocket('udp4');
    const got: string[] = [];
    sock.on('message', (m) => got.push(String(m)));
    await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
    const port = sock.address().port;
    try {
      const conf = withOverrides(sbx.node(2).conf, { log_statsd_host: '127.0.0.1', log_statsd_port: port });
      const r = await ours(conf);
      expect(r.code ?? 0).toBe(0);
      await new Promise((res) => setTimeout(res, 200));
      expect(got.some((m) => /^object-2\.partition\.update\.count\.d\d+-\d+:1\|c$/.test(m))).toBe(true);
      expect(got.some((m) => /^object-2\.partition\.update\.timing:\d+\|ms$/.test(m))).toBe(true);
      expect(got.some((m) => /^object-2\.suffix\.hashes:\d+\|c$/.test(m))).toBe(true);
    } finally {
      sock.close();
    }
  });

  it('worker mode splits the devices over processes and writes per-disk recon', async () => {
    const node = sbx.node(4);
    const conf = withOverrides(node.conf, { reconstructor_workers: 2 });
    const t0 = Date.now() / 1000;
    const r = await ours(conf);
    expect(r.code ?? 0, r.stderr).toBe(0);
    const out = String(r.stdout);
    expect(out.match(/Started worker \d \(pid \d+\)/g)?.length).toBe(2);
    const recon = JSON.parse(readFileSync(join(node.reconCache, 'object.recon'), 'utf8'));
    expect(Object.keys(recon.object_reconstruction_per_disk).sort()).toEqual([...node.devices].sort());
    const pids = new Set(Object.values(recon.object_reconstruction_per_disk).map((e) => (e as { pid: number }).pid));
    expect(pids.size).toBe(2);
    expect(recon.object_reconstruction_last).toBeGreaterThanOrEqual(t0);
  });

  it('in daemon mode with workers, a dead worker is respawned', async () => {
    const conf = withOverrides(sbx.node(5).conf, { reconstructor_workers: 2 });
    const child = spawn(process.execPath, [BIN, 'reconstructor', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    try {
      for (let i = 0; i < 100 && (out.match(/Started worker/g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      const pid = Number(/Started worker 1 \(pid (\d+)\)/.exec(out)![1]);
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 120 && !/Worker 1 \(pid \d+\) died; respawning/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/Worker 1 \(pid \d+\) died; respawning/);
      for (let i = 0; i < 50 && (out.match(/Started worker 1 /g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      expect((out.match(/Started worker 1 /g) ?? []).length).toBe(2);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))).toBe(0);
  });

  it('in daemon mode, serves /metrics and exits cleanly on SIGTERM', async () => {
    const srv = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as { port: number }).port;
    srv.close();
    const conf = withOverrides(sbx.node(6).conf, { metrics_port: port });
    const child = spawn(process.execPath, [BIN, 'reconstructor', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    try {
      for (let i = 0; i < 100 && !/Object reconstruction complete\./.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/Object reconstruction complete\./);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      const text = await res.text();
      expect(text).toMatch(/^fragmend_reconstructor_passes_total [1-9]\d*$/m);
      expect(text).toMatch(/fragmend_reconstructor_pass_failures\{cause="ssync"\} \d+/);
      expect(text).toMatch(/fragmend_reconstructor_pass_failures\{cause="rotten"\} \d+/);
      expect(text).toMatch(/fragmend_reconstructor_pass_rebuilds_by_check\{check="fragmentMore"\} \d+/);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(out).toMatch(/SIGTERM received/);
  });
});
