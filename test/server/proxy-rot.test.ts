// A real Swift 2.30 proxy reading an EC object one of whose fragment archives has rotted on disk,
// the node holding it run by a real swift-object-server or by fragmend's object server (same
// config, same disk). Two other primaries are down, so the proxy has to read the rotten archive.
// A bad fragment header both servers find as they reach it; payload rot shows only in the
// archive's MD5, which Swift's server checks after sending the whole archive and fragmend's before
// sending its last bytes (by the CRC-32 recorded with an archive fragmend's server wrote, then by
// the MD5 that decides).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectServer } from '../../src/server/object-server.js';
import { LOOPBACK, realSwiftEnabled, SwiftSandbox, swiftHttp } from '../helpers/swift-cluster.js';
import { type NodeInfo, type Placement } from '../helpers/placement.js';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const FRAG = 262_224;

interface ClientGet {
  status: number;
  length: number;
  body: Buffer;
  complete: boolean;
}

/** A GET that keeps what arrived when the response is cut short. */
function clientGet(port: number, path: string): Promise<ClientGet> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: LOOPBACK, port, method: 'GET', path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const done = () => {
        const body = Buffer.concat(chunks);
        const length = Number(res.headers['content-length']);
        resolve({ status: res.statusCode ?? 0, length, body, complete: body.length === length });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(!realSwiftEnabled())('a real Swift proxy reading a rotten fragment archive', () => {
  let sbx: SwiftSandbox;
  let proxy: number;
  const account = 'AUTH_test';
  const container = 'rot';
  const bodies = new Map<string, Buffer>();

  beforeAll(async () => {
    sbx = await SwiftSandbox.create({ objectNodes: 8 });
    await sbx.startAll();
    proxy = Number(new URL(await sbx.startProxy()).port);
    expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${container}`, { headers: { 'X-Storage-Policy': 'ec42' } })).status).toBeLessThan(300);
    let seed = 0;
    for (const kind of ['swift', 'fragmend'])
      for (const rot of ['header', 'payload']) {
        const name = `${kind}-${rot}`;
        const body = Buffer.alloc(3 * 1048576 + 4321);
        for (let i = 0; i < body.length; i++) body[i] = (i * 31 + ++seed) & 0xff;
        bodies.set(name, body);
        expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${container}/${name}`, { body })).status).toBe(201);
      }
  }, 120_000);
  afterAll(async () => {
    await sbx?.cleanup();
  });

  const placement = (object: string) => sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account, container, object });
  const dirOf = (p: Placement, n: NodeInfo) => join(sbx.nodeOfDevice(n.device).devicesRoot, n.device, 'objects-1', String(p.partition), p.hash.slice(-3), p.hash);

  /** The .data file of the object's first primary. */
  const firstArchive = (p: Placement) => {
    const dir = dirOf(p, p.primaries[0]!);
    return join(dir, readdirSync(dir).find((f) => f.endsWith('.data'))!);
  };

  /** Runs fn while a node serves with fragmend's object server in place of Swift's. */
  async function withFragmendServer<T>(node: number, fn: () => Promise<T>): Promise<T> {
    await sbx.stopObjectServer(node);
    const ours = await ObjectServer.fromConfFile(sbx.node(node).conf, { logger: pino({ level: 'silent' }) });
    try {
      await ours.start();
      return await fn();
    } finally {
      await ours.stop();
      await sbx.startObjectServer(node);
    }
  }

  /**
   * Spoils the archive of the object's first primary, takes two other primaries down (so the
   * proxy must read the rotten archive), runs the rotten node on Swift's or fragmend's server,
   * and GETs the object through the proxy; then brings the nodes back and GETs it again.
   */
  async function scenario(kind: 'swift' | 'fragmend', rot: 'header' | 'payload', object = `${kind}-${rot}`) {
    const p = await placement(object);
    const [rotten, down1, down2] = p.primaries.map((n) => sbx.nodeOfDevice(n.device).index);
    const file = firstArchive(p);
    const bytes = readFileSync(file);
    expect(bytes.length).toBeGreaterThan(3 * FRAG);
    // a bad metadata checksum in the second fragment's header, or a flipped payload byte under
    // good headers (only the archive's MD5 shows it)
    bytes[rot === 'header' ? FRAG + 67 : FRAG + 5000]! ^= 0x5a;
    writeFileSync(file, bytes);
    await sbx.stopObjectServer(down1!);
    await sbx.stopObjectServer(down2!);
    const want = bodies.get(object)!;
    const get = () => clientGet(proxy, `/v1/${account}/${container}/${object}`);
    let got: ClientGet;
    try {
      got = kind === 'fragmend' ? await withFragmendServer(rotten!, get) : await get();
    } finally {
      await sbx.startObjectServer(down1!);
      await sbx.startObjectServer(down2!);
    }
    const firstWrong = got.body.findIndex((b, i) => b !== want[i]);
    const quarantined = existsSync(join(sbx.nodeOfDevice(p.primaries[0]!.device).devicesRoot, p.primaries[0]!.device, 'quarantined', 'objects-1', p.hash));
    const again = await clientGet(proxy, `/v1/${account}/${container}/${object}`);
    return { ...got, firstWrong, quarantined, againRight: again.status === 200 && again.complete && again.body.equals(want) };
  }

  /** Payload rot in the second segment's fragment: what the client got is right up to that segment, and the archive is quarantined. */
  function expectPayloadRotShown(r: Awaited<ReturnType<typeof scenario>>) {
    expect(r.status).toBe(200);
    expect(r.firstWrong).toBeGreaterThanOrEqual(1048576);
    expect(r.firstWrong).toBeLessThan(2 * 1048576);
    expect(r.quarantined).toBe(true);
    expect(r.againRight).toBe(true);
  }

  it('a bad fragment header: both servers cut the fragment stream there; the client gets the segments before it, no wrong byte, and a response cut short', async () => {
    const swift = await scenario('swift', 'header');
    const ours = await scenario('fragmend', 'header');
    for (const r of [swift, ours]) {
      expect(r.status).toBe(200);
      expect(r.complete).toBe(false);
      expect(r.firstWrong).toBe(-1);
      expect(r.quarantined).toBe(true);
      expect(r.againRight).toBe(true);
    }
    // the second fragment is the second segment's: the first segment (1 MiB) got through
    expect(ours.body.length).toBe(1048576);
    expect(ours.body.length).toBe(swift.body.length);
  }, 120_000);

  it("payload rot under good headers: through Swift's server the client gets a whole response with wrong bytes; through fragmend's, one cut short", async () => {
    const swift = await scenario('swift', 'payload');
    const ours = await scenario('fragmend', 'payload');
    // the flipped byte is in the second segment's fragment, which the proxy decodes and sends
    // before the archive's end, where its MD5 shows the rot
    for (const r of [swift, ours]) expectPayloadRotShown(r);
    // Swift's server sends the whole archive and quarantines it after: nothing tells the client
    expect(swift.complete).toBe(true);
    // fragmend's cuts it before its last bytes: the proxy cannot finish the object, and the client
    // sees a failed read
    expect(ours.complete).toBe(false);
    expect(ours.body.length).toBeLessThan(ours.length);
  }, 120_000);

  it("payload rot in an archive fragmend's server wrote: its CRC-32 record shows it, the MD5 confirms, and the client's response is cut short the same way", async () => {
    const object = 'fragmend-written-payload';
    const body = Buffer.alloc(3 * 1048576 + 999);
    for (let i = 0; i < body.length; i++) body[i] = (i * 17 + 3) & 0xff;
    bodies.set(object, body);
    // the first primary runs fragmend's server while the real proxy PUTs the object
    const p = await placement(object);
    const put = await withFragmendServer(sbx.nodeOfDevice(p.primaries[0]!.device).index, () => swiftHttp(proxy, 'PUT', `/v1/${account}/${container}/${object}`, { body }));
    expect(put.status).toBe(201);
    const file = firstArchive(p);
    const archive = readFileSync(file);
    const xattr = await import('@napi-rs/xattr');
    const record = (await xattr.getAttribute(file, 'user.fragmend.content_crc32'))?.toString('latin1');
    expect(record).toBe(`crc32 ${crc32(archive).toString(16).padStart(8, '0')} ${archive.length} ${md5(archive)}`);
    const r = await scenario('fragmend', 'payload', object);
    expectPayloadRotShown(r);
    expect(r.complete).toBe(false);
  }, 120_000);
});
