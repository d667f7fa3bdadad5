// fragmend reconstructor --once, run where swift-object-reconstructor would run, on a real
// Swift 2.30 cluster (real object servers and proxy, three EC backends): lost archives come
// back byte-identical, a wiped device is restored, a handoff reverts only once its primary
// confirmed, tombstones and .meta converge, an in-sync cluster is left alone and object.recon
// is updated, and objects written through the proxy read back intact.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetadata } from '../../src/swift/metadata.js';
import { realSwiftEnabled, SwiftSandbox, swiftHttp } from '../helpers/swift-cluster.js';
import { bytes, type NodeInfo, type Placement } from '../helpers/placement.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');



/** Every object file under a devices root: relative path -> md5 and metadata. */
async function snapshot(devicesRoot: string): Promise<Map<string, { md5: string; meta: Record<string, string> }>> {
  const out = new Map<string, { md5: string; meta: Record<string, string> }>();
  const walk = async (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name.startsWith('tmp') || e.name === 'quarantined') continue;
        await walk(p);
      } else if (/\.(data|ts|meta)$/.test(e.name)) {
        out.set(relative(devicesRoot, p), { md5: md5(readFileSync(p)), meta: await readMetadata(p) });
      }
    }
  };
  await walk(devicesRoot);
  return out;
}

describe.skipIf(!realSwiftEnabled())('fragmend reconstructor on a real Swift cluster', () => {
  let sbx: SwiftSandbox;
  let proxy: number;
  const account = 'AUTH_test';
  const containers = [
    ['c-libec', 'ec42', 1],
    ['c-isal', 'ec42-isal', 2],
    ['c-jerasure', 'ec42-jerasure', 3],
  ] as const;
  const written = new Map<string, Buffer>();

  beforeAll(async () => {
    sbx = await SwiftSandbox.create({
      objectNodes: 8,
      objectConf: { 'object-reconstructor': { http_timeout: 5, node_timeout: 3, conn_timeout: 0.5, interval: 1 } },
    });
    await sbx.startAll();
    proxy = Number(new URL(await sbx.startProxy()).port);
    for (const [c, policy] of containers) {
      expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${c}`, { headers: { 'X-Storage-Policy': policy } })).status).toBeLessThan(300);
      for (const [i, size] of [0, 1, 4096, 1048576 + 17, 3 * 1048576].entries()) {
        const body = bytes(size, i + 1);
        expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${c}/obj-${i}`, { body })).status).toBe(201);
        written.set(`${c}/obj-${i}`, body);
      }
    }
  }, 120_000);
  afterAll(async () => sbx?.cleanup());

  const ours = async (i: number, ...args: string[]) => {
    const r = await run(process.execPath, [BIN, 'reconstructor', sbx.node(i).conf, '--once', ...args], { maxBuffer: 1 << 26 }).catch((e) => e);
    expect(r.code ?? 0, r.stderr).toBe(0);
    return String(r.stdout);
  };
  /** Each pass's counters, from its last stats line (pino JSON), summed over the passes logged. */
  const passTotals = (logs: string) => {
    const t = { objectsRebuilt: 0, rotten: 0, checks: { fragmentMore: 0, etag: 0, server: 0, off: 0 } as Record<string, number> };
    const lines = logs.split('\n').filter((l) => l.includes('"sourceChecks"'));
    // a --once pass logs its stats once at its end (and maybe before): the last line of each pid counts
    const last = new Map<number, { objectsRebuilt: number; failures: Record<string, number>; sourceChecks: Record<string, number> }>();
    for (const l of lines) {
      const j = JSON.parse(l) as { pid: number; objectsRebuilt: number; failures: Record<string, number>; sourceChecks: Record<string, number> };
      last.set(j.pid, j);
    }
    for (const j of last.values()) {
      t.objectsRebuilt += j.objectsRebuilt;
      t.rotten += j.failures.rotten!;
      for (const [k, n] of Object.entries(j.sourceChecks)) t.checks[k]! += n;
    }
    return t;
  };
  const allNodes = async () => {
    let out = '';
    for (let i = 0; i < 8; i++) out += await ours(i);
    return out;
  };
  const placement = (c: string, object: string, policy: number) => sbx.diskfileOk<Placement>({ op: 'get_nodes', policy, account, container: c, object });
  const hashDir = (p: Placement, n: NodeInfo, policy: number) =>
    join(sbx.nodeOfDevice(n.device).devicesRoot, n.device, policy === 0 ? 'objects' : `objects-${policy}`, String(p.partition), p.hash.slice(-3), p.hash);
  /** What Swift's auditor does after quarantining: the suffix is marked for rehashing. */
  const invalidate = (p: Placement, n: NodeInfo, policy: number) =>
    appendFileSync(join(sbx.nodeOfDevice(n.device).devicesRoot, n.device, `objects-${policy}`, String(p.partition), 'hashes.invalid'), `${p.hash.slice(-3)}\n`);

  it.each(containers)('a lost fragment archive is rebuilt byte-identical (%s, policy %s)', async (c, _name, policy) => {
    const p = await placement(c, 'obj-3', policy);
    const lost = p.primaries[2]!;
    const root = sbx.nodeOfDevice(lost.device).devicesRoot;
    const before = await snapshot(root);
    const dir = hashDir(p, lost, policy);
    const names = readdirSync(dir);
    rmSync(dir, { recursive: true });
    invalidate(p, lost, policy);
    const totals = passTotals(await allNodes());
    expect(readdirSync(dir)).toEqual(names);
    // rebuilt from Swift's object servers, its sources checked (by the fragment more unless the
    // fifth answer came late, then by the ETags), and found sound
    expect(totals.objectsRebuilt).toBe(1);
    expect(totals.checks.fragmentMore! + totals.checks.etag!).toBe(1);
    expect(totals.rotten).toBe(0);
    const after = await snapshot(root);
    for (const n of names) {
      const key = relative(root, join(dir, n));
      expect(after.get(key), key).toEqual(before.get(key));
    }
  });

  it('a wiped device is fully restored', async () => {
    const victim = sbx.node(5);
    const root = victim.devicesRoot;
    const before = await snapshot(root);
    expect(before.size).toBeGreaterThan(5);
    for (const d of victim.devices) for (const e of readdirSync(join(root, d))) rmSync(join(root, d, e), { recursive: true, force: true });
    expect((await snapshot(root)).size).toBe(0);
    const started = Date.now();
    const logs = await allNodes();
    const after = await snapshot(root);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [k, v] of before) expect(after.get(k), k).toEqual(v);
    expect(logs).toMatch(/partitions reconstructed/);
    const totals = passTotals(logs);
    expect(totals.objectsRebuilt).toBeGreaterThanOrEqual([...before.keys()].filter((k) => k.endsWith('.data')).length);
    expect(totals.rotten).toBe(0);
    // most rebuilds read the fragment more from Swift's servers and checked it against the rest
    expect(totals.checks.fragmentMore!).toBeGreaterThan(totals.objectsRebuilt / 2);
    console.log(`wiped device restored in ${((Date.now() - started) / 1000).toFixed(1)} s (${before.size} files)`);
  });

  it('a handoff reverts to its primary, and keeps its copy while the primary is down', async () => {
    const c = 'c-libec';
    const object = 'while-down';
    const p = await placement(c, object, 1);
    const down = p.primaries[4]!;
    const downNode = sbx.nodeOfDevice(down.device).index;
    await sbx.stopObjectServer(downNode);
    const body = bytes(200_000, 77);
    expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${c}/${object}`, { body })).status).toBe(201);
    written.set(`${c}/${object}`, body);
    // The proxy put the down primary's fragment on a handoff.
    const handoff = p.handoffs.find((h) => existsSync(hashDir(p, h, 1)))!;
    expect(handoff).toBeDefined();
    const files = readdirSync(hashDir(p, handoff, 1));
    expect(files.some((f) => f.includes(`#${down.index}#d.data`))).toBe(true);
    const handoffNode = sbx.nodeOfDevice(handoff.device).index;
    await ours(handoffNode);
    expect(readdirSync(hashDir(p, handoff, 1))).toEqual(files); // primary unreachable: nothing deleted
    await sbx.startObjectServer(downNode);
    await ours(handoffNode);
    expect(existsSync(hashDir(p, handoff, 1))).toBe(false);
    expect(readdirSync(hashDir(p, down, 1))).toEqual(files);
  });

  it('tombstones and .meta updates converge', async () => {
    const c = 'c-isal';
    const p0 = await placement(c, 'obj-2', 2);
    const down = p0.primaries[1]!;
    const downNode = sbx.nodeOfDevice(down.device).index;
    await sbx.stopObjectServer(downNode);
    expect((await swiftHttp(proxy, 'POST', `/v1/${account}/${c}/obj-2`, { headers: { 'X-Object-Meta-Color': 'green' } })).status).toBe(202);
    expect((await swiftHttp(proxy, 'DELETE', `/v1/${account}/${c}/obj-1`)).status).toBe(204);
    written.delete(`${c}/obj-1`);
    await sbx.startObjectServer(downNode);
    await allNodes();
    const p1 = await placement(c, 'obj-1', 2);
    for (const n of p0.primaries) expect(readdirSync(hashDir(p0, n, 2)).some((f) => f.endsWith('.meta')), n.device).toBe(true);
    const tombstones = p1.primaries.map((n) => readdirSync(hashDir(p1, n, 2)));
    for (const t of tombstones) expect(t).toEqual(tombstones[0]);
    expect(tombstones[0]!.every((f) => f.endsWith('.ts'))).toBe(true);
  });

  it('an in-sync cluster is left untouched, and object.recon is updated', async () => {
    const before = await Promise.all([...Array(8).keys()].map((i) => snapshot(sbx.node(i).devicesRoot)));
    const t0 = Date.now() / 1000;
    const out = await ours(0);
    for (let i = 1; i < 8; i++) await ours(i);
    const after = await Promise.all([...Array(8).keys()].map((i) => snapshot(sbx.node(i).devicesRoot)));
    after.forEach((snap, i) => expect([...snap.entries()].sort(), `node ${i}`).toEqual([...before[i]!.entries()].sort()));
    const recon = JSON.parse(readFileSync(join(sbx.node(0).reconCache, 'object.recon'), 'utf8'));
    expect(recon.object_reconstruction_last).toBeGreaterThanOrEqual(t0);
    expect(recon.object_reconstruction_time).toBeGreaterThanOrEqual(0);
    expect(recon.fragmend_reconstruction_last_pass).toMatchObject({
      objects_rebuilt: 0,
      handoffs_remaining: 0,
      source_checks: { fragmentMore: 0, etag: 0, server: 0, off: 0 },
    });
    expect(out).toMatch(/Object reconstruction complete \(once\)/);
    // Swift's servers answer a REPLICATE for the path's partition alone, whatever else it asks
    // for: every job asked its partners itself, and no answer failed
    const stats = out.split('\n').filter((l) => l.includes('"replicatesAhead"')).map((l) => JSON.parse(l) as { replicatesAhead: number; failures: Record<string, number> });
    expect(stats.length).toBeGreaterThan(0);
    expect(stats.at(-1)!.replicatesAhead).toBe(0);
    expect(stats.at(-1)!.failures.replicate).toBe(0);
  });

  it('objects written through the real proxy read back intact', async () => {
    for (const [key, body] of written) {
      const res = await swiftHttp(proxy, 'GET', `/v1/${account}/${key}`);
      expect(res.status, key).toBe(200);
      expect(md5(res.body), key).toBe(md5(body));
    }
  });

  it('a dead peer costs only its jobs: the pass completes and nothing is lost', async () => {
    const dead = 3;
    const before = await snapshot(sbx.node(0).devicesRoot);
    await sbx.stopObjectServer(dead);
    try {
      const out = await ours(0, '-v');
      expect(out).toMatch(/Object reconstruction complete \(once\)/);
      expect(out).toMatch(/Unable to get remote suffix hashes|ECONNREFUSED|connect/);
      const after = await snapshot(sbx.node(0).devicesRoot);
      for (const k of before.keys()) expect(after.has(k), k).toBe(true);
    } finally {
      await sbx.startObjectServer(dead);
    }
    expect(statSync(sbx.node(0).devicesRoot).isDirectory()).toBe(true);
  });
});
