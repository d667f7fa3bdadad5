// A real Swift 2.30 cluster in which two nodes run fragmend's object server instead of Swift's,
// on the same config files and disks: the real swift-object-reconstructor rebuilds a lost
// fragment into a fragmend node and reverts a handoff to one, over fragmend's SSYNC receiver,
// and the files written are byte-identical (names, data, metadata) to what the Swift node held.
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectServer } from '../../src/server/object-server.js';
import { realSwiftEnabled, SwiftSandbox, swiftHttp } from '../helpers/swift-cluster.js';
import { type NodeInfo, type Placement } from '../helpers/placement.js';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

describe.skipIf(!realSwiftEnabled())('real swift-object-reconstructor syncing into fragmend object servers', () => {
  let sbx: SwiftSandbox;
  let proxy: number;
  const ours = new Map<number, ObjectServer>();
  const account = 'AUTH_test';
  const container = 'mixed';

  beforeAll(async () => {
    sbx = await SwiftSandbox.create({ objectNodes: 8 });
    await sbx.startAll();
    proxy = Number(new URL(await sbx.startProxy()).port);
    expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${container}`, { headers: { 'X-Storage-Policy': 'ec42' } })).status).toBeLessThan(300);
    for (let i = 0; i < 12; i++) {
      const body = Buffer.alloc(i % 2 ? 1048576 + 333 * i : 5000 + i, i + 1);
      expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${container}/o${i}`, { body })).status).toBe(201);
    }
    await sbx.stopProxy();
    // Nodes 6 and 7 switch to fragmend, same conf, same disks, same port.
    for (const i of [6, 7]) {
      await sbx.stopObjectServer(i);
      const s = await ObjectServer.fromConfFile(sbx.node(i).conf, { logger: pino({ level: 'silent' }) });
      await s.start();
      ours.set(i, s);
    }
  }, 120_000);
  afterAll(async () => {
    for (const s of ours.values()) await s.stop();
    await sbx?.cleanup();
  });

  const placement = (object: string) => sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account, container, object });
  const where = (p: Placement, n: NodeInfo, object: string) => ({ devices: sbx.nodeOfDevice(n.device).devicesRoot, device: n.device, partition: p.partition, account, container, object, policy: 1 });
  const dirOf = (p: Placement, n: NodeInfo) => join(sbx.nodeOfDevice(n.device).devicesRoot, n.device, 'objects-1', String(p.partition), p.hash.slice(-3), p.hash);
  const read = (p: Placement, n: NodeInfo, object: string) => sbx.diskfileOk<{ metadata: Record<string, string>; body: string }>({ op: 'read', ...where(p, n, object), frag_index: n.index });
  const swiftNodes = [0, 1, 2, 3, 4, 5];

  /** An object with a primary on a fragmend node (6 or 7). */
  async function objectOnOurs(): Promise<{ object: string; p: Placement; mine: NodeInfo }> {
    for (let i = 0; i < 12; i++) {
      const p = await placement(`o${i}`);
      const mine = p.primaries.find((n) => ours.has(sbx.nodeOfDevice(n.device).index));
      if (mine) return { object: `o${i}`, p, mine };
    }
    throw new Error('no object has a primary on nodes 6/7');
  }

  it('rebuilds a lost fragment archive into a fragmend node, byte-identical', async () => {
    const { object, p, mine } = await objectOnOurs();
    const before = await read(p, mine, object);
    const names = readdirSync(dirOf(p, mine));
    rmSync(dirOf(p, mine), { recursive: true });
    appendFileSync(join(sbx.nodeOfDevice(mine.device).devicesRoot, mine.device, 'objects-1', String(p.partition), 'hashes.invalid'), `${p.hash.slice(-3)}\n`);
    for (const i of swiftNodes) {
      const r = await sbx.runReconstructorOnce(i, ['-p', String(p.partition)]);
      expect(r.code, r.output).toBe(0);
    }
    expect(readdirSync(dirOf(p, mine))).toEqual(names);
    const after = await read(p, mine, object);
    expect(md5(Buffer.from(after.body, 'base64'))).toBe(md5(Buffer.from(before.body, 'base64')));
    expect(after.metadata).toEqual(before.metadata);
  });

  it('reverts a handoff to a fragmend primary, and Swift deletes its copy only then', async () => {
    const { object, p, mine } = await objectOnOurs();
    const handoff = p.handoffs.find((h) => !ours.has(sbx.nodeOfDevice(h.device).index))!;
    const before = await read(p, mine, object);
    const names = readdirSync(dirOf(p, mine));
    // Move the archive from its fragmend primary to a Swift handoff, as a proxy would have
    // written it while the primary was down.
    mkdirSync(join(dirOf(p, handoff), '..'), { recursive: true });
    renameSync(dirOf(p, mine), dirOf(p, handoff)); // a rename keeps the xattrs (metadata)
    appendFileSync(join(sbx.nodeOfDevice(mine.device).devicesRoot, mine.device, 'objects-1', String(p.partition), 'hashes.invalid'), `${p.hash.slice(-3)}\n`);
    const r = await sbx.runReconstructorOnce(sbx.nodeOfDevice(handoff.device).index, ["-p", String(p.partition)]);
    expect(r.code, r.output).toBe(0);
    expect(readdirSync(dirOf(p, mine))).toEqual(names);
    const after = await read(p, mine, object);
    expect(md5(Buffer.from(after.body, 'base64'))).toBe(md5(Buffer.from(before.body, 'base64')));
    expect(after.metadata).toEqual(before.metadata);
    expect(existsSync(dirOf(p, handoff))).toBe(false);
  });

  it('the real proxy reads every object back through the mixed cluster', async () => {
    proxy = Number(new URL(await sbx.startProxy()).port);
    for (let i = 0; i < 12; i++) {
      const res = await swiftHttp(proxy, 'GET', `/v1/${account}/${container}/o${i}`);
      expect(res.status, `o${i}`).toBe(200);
      expect(md5(res.body)).toBe(md5(Buffer.alloc(i % 2 ? 1048576 + 333 * i : 5000 + i, i + 1)));
    }
  });
});
