// A rebuild that has to read a peer's rotten archive, on a real Swift 2.30 cluster (Swift's
// object servers): the peer's archive has a flipped payload byte under good fragment headers,
// which only its MD5 shows. Swift's object server sends it whole and quarantines it after;
// swift-object-reconstructor passes the rotten bytes on, and the partner ends up with a wrong
// archive whose own ETag matches it. fragmend's reconstructor checks each peer's archive against
// its ETag before rebuilding the last segment from it, or, when one fragment more than k can be
// had, checks that the k rebuild that one too, segment by segment: either way the rebuild fails,
// the partner keeps nothing, and the next pass (the rotten archive now quarantined) rebuilds the
// right bytes; with check_peer_etag = false it reads the peers as Swift does.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realSwiftEnabled, SwiftSandbox, swiftHttp } from '../helpers/swift-cluster.js';
import { bytes, type NodeInfo, type Placement } from '../helpers/placement.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const FRAG = 262_224;
const OBJECTS = ['by-swift', 'by-fragmend', 'unchecked', 'all-up'];

describe.skipIf(!realSwiftEnabled())("rebuilding from a peer's rotten archive, on Swift's object servers", () => {
  let sbx: SwiftSandbox;
  let proxy: number;
  const account = 'AUTH_test';
  const c = 'rotpeer';

  beforeAll(async () => {
    sbx = await SwiftSandbox.create({ objectNodes: 8, objectConf: { 'object-reconstructor': { http_timeout: 5, node_timeout: 3, conn_timeout: 0.5 } } });
    await sbx.startAll();
    proxy = Number(new URL(await sbx.startProxy()).port);
    expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${c}`, { headers: { 'X-Storage-Policy': 'ec42' } })).status).toBeLessThan(300);
    for (const [i, name] of OBJECTS.entries()) {
      expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${c}/${name}`, { body: bytes(3 * 1048576 + 999, i + 11) })).status).toBe(201);
    }
  }, 120_000);
  afterAll(async () => sbx?.cleanup());

  const placement = (object: string) => sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account, container: c, object });
  const root = (n: NodeInfo) => join(sbx.nodeOfDevice(n.device).devicesRoot, n.device);
  const dirOf = (p: Placement, n: NodeInfo) => join(root(n), 'objects-1', String(p.partition), p.hash.slice(-3), p.hash);
  const dataFile = (p: Placement, n: NodeInfo) => {
    const d = dirOf(p, n);
    const f = existsSync(d) ? readdirSync(d).find((x) => x.endsWith('.data')) : undefined;
    return f ? join(d, f) : null;
  };
  const nodeIdx = (n: NodeInfo) => sbx.nodeOfDevice(n.device).index;
  const ours = async (i: number, part: number, conf = sbx.node(i).conf) => {
    const r = await run(process.execPath, [BIN, 'reconstructor', conf, '--once', '-p', String(part)], { maxBuffer: 1 << 26 }).catch((e) => e);
    expect(r.code ?? 0, r.stderr).toBe(0);
    return String(r.stdout);
  };

  /**
   * Loses the archive of fragment 0, rots the payload of fragment 2's archive and takes fragment
   * 3's node down: the node of fragment 1 (the lost one's right partner) can rebuild fragment 0
   * only from its own archive and those of fragments 2, 4 and 5.
   */
  function setUp(p: Placement) {
    const at = (i: number) => p.primaries.find((n) => n.index === i)!;
    const [lost, rebuilder, rotten, down] = [at(0), at(1), at(2), at(3)];
    const lostFile = dataFile(p, lost)!;
    const original = { name: lostFile.slice(lostFile.lastIndexOf('/') + 1), md5: md5(readFileSync(lostFile)) };
    rmSync(dirOf(p, lost), { recursive: true });
    appendFileSync(join(root(lost), 'objects-1', String(p.partition), 'hashes.invalid'), `${p.hash.slice(-3)}\n`);
    const rottenFile = dataFile(p, rotten)!;
    const b = readFileSync(rottenFile);
    const sound = md5(b);
    b[FRAG + 5000]! ^= 0x5a;
    writeFileSync(rottenFile, b); // the xattrs (metadata, its ETag) stay
    return { lost, rebuilder, rotten, down, original, sound };
  }
  /** The counters of the pass's last stats line (pino JSON). */
  const passStats = (log: string) =>
    JSON.parse(log.split('\n').filter((l) => l.includes('"failures"')).pop()!) as { objectsRebuilt: number; bytesRebuilt: number; failures: Record<string, number> };
  const quarantined = (p: Placement, n: NodeInfo) => existsSync(join(root(n), 'quarantined', 'objects-1', p.hash));
  /**
   * Another pass of ours rebuilds the lost archive byte-identical, and the quarantined rotten one
   * too (the rebuilder is its left partner), and the object reads back right through the proxy.
   */
  async function nextPassRebuildsRight(p: Placement, s: ReturnType<typeof setUp>, name: string) {
    const log = await ours(nodeIdx(s.rebuilder), p.partition);
    const rebuilt = dataFile(p, s.lost);
    expect(rebuilt).not.toBeNull();
    expect(md5(readFileSync(dataFile(p, s.rotten)!))).toBe(s.sound);
    expect(passStats(log)).toMatchObject({ objectsRebuilt: 2, bytesRebuilt: 2 * statSync(rebuilt!).size, failures: { rotten: 0 } });
    expect(rebuilt!.endsWith(s.original.name)).toBe(true);
    expect(md5(readFileSync(rebuilt!))).toBe(s.original.md5);
    const r = await swiftHttp(proxy, 'GET', `/v1/${account}/${c}/${name}`);
    expect(r.status).toBe(200);
    expect(md5(r.body)).toBe(md5(bytes(3 * 1048576 + 999, OBJECTS.indexOf(name) + 11)));
  }

  it("swift-object-reconstructor passes the rotten bytes on: the partner gets a wrong archive (Swift's behaviour, for contrast)", async () => {
    const p = await placement('by-swift');
    const s = setUp(p);
    await sbx.stopObjectServer(nodeIdx(s.down));
    try {
      const r = await sbx.runReconstructorOnce(nodeIdx(s.rebuilder), ['-p', String(p.partition)]);
      expect(r.code, r.output).toBe(0);
    } finally {
      await sbx.startObjectServer(nodeIdx(s.down));
    }
    const rebuilt = dataFile(p, s.lost);
    expect(rebuilt).not.toBeNull();
    expect(rebuilt!.endsWith(s.original.name)).toBe(true);
    expect(md5(readFileSync(rebuilt!))).not.toBe(s.original.md5);
    // the rotten source was quarantined by its object server, after it had been read whole
    expect(quarantined(p, s.rotten)).toBe(true);
  }, 120_000);

  it('fragmend reconstructor refuses it: the partner keeps nothing, and the next pass rebuilds the right archive', async () => {
    const p = await placement('by-fragmend');
    const s = setUp(p);
    await sbx.stopObjectServer(nodeIdx(s.down));
    let log: string;
    try {
      log = await ours(nodeIdx(s.rebuilder), p.partition);
    } finally {
      await sbx.startObjectServer(nodeIdx(s.down));
    }
    expect(log).toMatch(/does not match its ETag/);
    // counted as a rotten source (and as the SSYNC session it cut), with no bytes rebuilt
    expect(passStats(log)).toMatchObject({ objectsRebuilt: 0, bytesRebuilt: 0, failures: { rotten: 1, ssync: 1, source: 0 } });
    expect(dataFile(p, s.lost)).toBeNull();
    // Swift's object server quarantined its archive once it had sent it whole
    expect(quarantined(p, s.rotten)).toBe(true);
    // the next pass, with the down node back, rebuilds from the good archives
    await nextPassRebuildsRight(p, s, 'by-fragmend');
  }, 120_000);

  it('with every node up, the fragment more shows the rot at its segment: the rebuild ends there, the sources are read whole (so Swift quarantines), and the next pass is right', async () => {
    const p = await placement('all-up');
    const s = setUp(p);
    const log = await ours(nodeIdx(s.rebuilder), p.partition);
    expect(log).toMatch(/sources do not agree in segment 1 /);
    expect(log).not.toMatch(/does not match its ETag/);
    expect(passStats(log)).toMatchObject({ objectsRebuilt: 0, bytesRebuilt: 0, failures: { rotten: 1, ssync: 1, source: 0 } });
    expect(dataFile(p, s.lost)).toBeNull();
    expect(quarantined(p, s.rotten)).toBe(true);
    await nextPassRebuildsRight(p, s, 'all-up');
  }, 120_000);

  it('with check_peer_etag = false, fragmend reads the peers as Swift does, and passes the rotten bytes on too', async () => {
    const p = await placement('unchecked');
    const s = setUp(p);
    const i = nodeIdx(s.rebuilder);
    const conf = `${sbx.node(i).conf}.unchecked.conf`;
    writeFileSync(conf, readFileSync(sbx.node(i).conf, 'utf8').replace('[object-reconstructor]', '[object-reconstructor]\ncheck_peer_etag = false'));
    await sbx.stopObjectServer(nodeIdx(s.down));
    try {
      await ours(i, p.partition, conf);
    } finally {
      await sbx.startObjectServer(nodeIdx(s.down));
    }
    const rebuilt = dataFile(p, s.lost);
    expect(rebuilt).not.toBeNull();
    expect(md5(readFileSync(rebuilt!))).not.toBe(s.original.md5);
  }, 120_000);
});
