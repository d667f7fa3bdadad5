// The SSYNC sender asks for the next wanted objects' rebuilds while the current one streams.
// Into fragmend's own receiver: every object arrives, in order and intact, and the next rebuild
// has been asked for before the current body ends; a rebuild that fails skips its object only;
// a session torn down with rebuilds asked for ahead lets go of them. With `speculate`, the first
// two offered objects' rebuilds begin while the receiver waits for its device lock and are the
// ones sent; one not wanted is let go unstreamed; one that fails is made again once wanted.
import type { Server } from 'node:net';
import { fakeSsyncReceiver } from '../helpers/fake-ssync-receiver.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { ssyncSend, type ArchiveSource } from '../../src/replication/ssync-sender.js';
import type { ObjectServer } from '../../src/server/object-server.js';
import { DiskFileError, ECDiskFileManager, type ECDiskFile } from '../../src/swift/diskfile.js';
import { acquireLock } from '../../src/swift/locks.js';
import { Timestamp } from '../../src/swift/timestamp.js';
import { makeSandbox, request, startOurServer, PREFIX, SUFFIX, type Sandbox } from '../server/harness.js';

const PART = 3;
const N = 5;

describe('SSYNC sender: the next rebuild is asked for while the current archive streams', () => {
  let sbx: Sandbox;
  let mgr: ECDiskFileManager;
  let ours: { server: ObjectServer; port: number };
  let srcDev: string;
  let suffixes: string[];
  const servers: Server[] = [];
  /** a real fragment header: the receiving server checks it when the archive is read back */
  let header: Uint8Array;
  /** what the rebuilt archive of object i holds */
  const bodyOf = (name: string) => Buffer.concat([header, Buffer.alloc(150_000 + name.length * 1000 - header.length, name)]);

  beforeAll(async () => {
    header = (await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' })).encode(new Uint8Array(1000))[2]!.subarray(0, 80);
    sbx = makeSandbox('ahead');
    const src = sbx.devices('src', ['sda']);
    srcDev = join(src, 'sda');
    mgr = new ECDiskFileManager({ devices: src, mountCheck: false, hashPrefix: PREFIX, hashSuffix: SUFFIX });
    const found = new Set<string>();
    for (let i = 0; i < N; i++) {
      const df = mgr.diskFile(srcDev, PART, 'AUTH_t', 'c', `o${i}`, sbx.policy, { fragIndex: 1 });
      const ts = new Timestamp(Date.now() / 1000 - 100 + i);
      const w = df.writer();
      await w.open();
      await w.write(new Uint8Array(1000));
      await w.put({
        'X-Timestamp': ts.internal,
        'Content-Length': '1000',
        ETag: 'e',
        'Content-Type': 'application/octet-stream',
        'X-Object-Sysmeta-Ec-Frag-Index': '1',
        'X-Object-Sysmeta-Ec-Etag': 'x',
        'X-Object-Sysmeta-Ec-Content-Length': '4000',
      });
      await w.commit(ts);
      await w.close();
      found.add(df.hash.slice(-3));
    }
    suffixes = [...found];
    ours = await startOurServer(sbx, sbx.devices('dst'));
  });
  afterAll(async () => {
    for (const s of servers) s.close();
    await ours?.server.stop();
    sbx?.cleanup();
  });

  /** Our receiver again, over empty devices; returns their root. */
  const freshReceiver = async (name: string) => {
    await ours.server.stop();
    const root = sbx.devices(name);
    ours = await startOurServer(sbx, root);
    return root;
  };

  const job = () => ({ devPath: srcDev, partition: PART, policy: sbx.policy, fragIndex: 1, suffixes });
  const opts = { connTimeout: 2, nodeTimeout: 2, httpTimeout: 2 };

  /** A rebuild whose body streams in pieces with pauses, recording what happened when. */
  const recorder = (fail: (name: string, speculative: boolean) => boolean = () => false) => {
    const events: string[] = [];
    const rebuild = async (df: ECDiskFile, o?: { speculative?: boolean }): Promise<ArchiveSource> => {
      const name = df.objectName!.split('/').pop()!;
      events.push(`rebuild ${name}${o?.speculative ? ' early' : ''}`);
      if (fail(name, !!o?.speculative)) throw new DiskFileError(`no peers for ${name}`);
      const body = bodyOf(name);
      // (as a real rebuild's: the ETag is the receiver's to compute)
      const { ETag: _etag, ...metadata } = df.datafileMetadata;
      return {
        metadata: { ...metadata, 'X-Object-Sysmeta-Ec-Frag-Index': '2' },
        contentLength: body.length,
        body: (async function* () {
          for (let at = 0; at < body.length; at += 50_000) {
            await new Promise((r) => setTimeout(r, 5));
            yield body.subarray(at, at + 50_000);
          }
          events.push(`streamed ${name}`);
        })(),
        discard: () => events.push(`discard ${name}`),
      };
    };
    return { events, rebuild };
  };

  it('sends every wanted object intact, asking for the next rebuild before the current body ends', async () => {
    const { events, rebuild } = recorder();
    const r = await ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: ours.port, device: 'sdb', backendIndex: 2 }, { ...opts, rebuild });
    expect(r.error).toBeUndefined();
    expect(r.success).toBe(true);
    expect(r.sent).toBe(N);
    const order = events.filter((e) => e.startsWith('rebuild')).map((e) => e.split(' ')[1]!);
    expect(order).toHaveLength(N);
    for (let i = 0; i + 1 < order.length; i++) {
      expect(events.indexOf(`rebuild ${order[i + 1]}`)).toBeLessThan(events.indexOf(`streamed ${order[i]}`));
    }
    for (const name of order) {
      const got = await request(ours.port, 'GET', `/sdb/${PART}/AUTH_t/c/${name}`, { 'X-Backend-Storage-Policy-Index': '1' });
      expect(got.status).toBe(200);
      expect(Buffer.compare(got.body, bodyOf(name))).toBe(0);
    }
  });

  it('a rebuild that fails skips its object only', async () => {
    const victim = 'o3';
    // the receiver already has them all: empty it first
    await freshReceiver('dst2');
    const { rebuild } = recorder((name) => name === victim);
    const r = await ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: ours.port, device: 'sdb', backendIndex: 2 }, { ...opts, rebuild });
    expect(r.success).toBe(true);
    expect(r.sent).toBe(N - 1);
    expect(r.inSync.size).toBe(N - 1);
    for (let i = 0; i < N; i++) {
      const got = await request(ours.port, 'GET', `/sdb/${PART}/AUTH_t/c/o${i}`, { 'X-Backend-Storage-Policy-Index': '1' });
      expect(got.status).toBe(`o${i}` === victim ? 404 : 200);
    }
  });

  it('a session torn down mid-PUT lets go of the rebuild it had asked for ahead', async () => {
    // a receiver that wants everything, then hangs up once a PUT has begun
    const { port, server } = await fakeSsyncReceiver((sock) => setTimeout(() => sock.destroy(), 8), { wantAll: true });
    servers.push(server);
    const { events, rebuild } = recorder();
    const r = await ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: port, device: 'sdb', backendIndex: 2 }, { ...opts, rebuild });
    expect(r.success).toBe(false);
    await new Promise((res) => setTimeout(res, 50));
    const asked = events.filter((e) => e.startsWith('rebuild')).map((e) => e.split(' ')[1]!);
    expect(asked).toHaveLength(3);
    // the one being sent and the two asked for ahead are all let go
    for (const name of asked) expect(events).toContain(`discard ${name}`);
    expect(events.filter((e) => e.startsWith('streamed'))).toEqual([]);
  });

  /** the name of the object behind an offered hash */
  const nameOf = async (hash: string) => {
    const df = mgr.diskFileFromHash(srcDev, PART, hash, sbx.policy, { fragIndex: 1 });
    await df.open();
    return df.objectName!.split('/').pop()!;
  };

  it("with speculate, the first offered objects' rebuilds start while the receiver waits for its device lock, and are the ones sent", async () => {
    const root = await freshReceiver('dst3');
    // another session holds the receiver's device
    const release = await acquireLock(join(root, 'sdb'), { timeout: 5 });
    const { events, rebuild } = recorder();
    const sending = ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: ours.port, device: 'sdb', backendIndex: 2 }, { ...opts, rebuild, speculate: true });
    await new Promise((r) => setTimeout(r, 300));
    const early = [...events];
    release();
    const r = await sending;
    expect(r.error).toBeUndefined();
    expect(r.sent).toBe(N);
    // the first two offered
    expect(early).toHaveLength(2);
    for (const e of early) expect(e).toMatch(/^rebuild o\d early$/);
    const rebuilds = events.filter((e) => e.startsWith('rebuild'));
    // each object once: the early rebuilds were not made again
    expect(rebuilds).toHaveLength(N);
    expect(new Set(rebuilds.map((e) => e.split(' ')[1])).size).toBe(N);
    for (let i = 0; i < N; i++) {
      const got = await request(ours.port, 'GET', `/sdb/${PART}/AUTH_t/c/o${i}`, { 'X-Backend-Storage-Policy-Index': '1' });
      expect(got.status).toBe(200);
      expect(Buffer.compare(got.body, bodyOf(`o${i}`))).toBe(0);
    }
  });

  it('an early rebuild the receiver does not want is let go without being streamed', async () => {
    let offered: string[] = [];
    const { port, server } = await fakeSsyncReceiver(() => undefined, {
      want: (o) => {
        offered = o;
        return o.slice(1);
      },
      finish: true,
    });
    servers.push(server);
    const { events, rebuild } = recorder();
    const r = await ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: port, device: 'sdb', backendIndex: 2 }, { ...opts, rebuild, speculate: true });
    expect(r.error).toBeUndefined();
    expect(r.success).toBe(true);
    expect(r.sent).toBe(N - 1);
    const first = await nameOf(offered[0]!);
    await new Promise((res) => setTimeout(res, 50));
    expect(events).toContain(`rebuild ${first} early`);
    expect(events).toContain(`discard ${first}`);
    expect(events).not.toContain(`streamed ${first}`);
    expect(events).not.toContain(`rebuild ${first}`);
    expect(events.filter((e) => e.startsWith('streamed'))).toHaveLength(N - 1);
  });

  it('an early rebuild that failed is made again, plainly, once its object is wanted', async () => {
    await freshReceiver('dst4');
    // fails only as a guess
    const { events, rebuild } = recorder((_name, speculative) => speculative);
    const r = await ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: ours.port, device: 'sdb', backendIndex: 2 }, { ...opts, rebuild, speculate: true });
    expect(r.error).toBeUndefined();
    expect(r.sent).toBe(N);
    const early = events.filter((e) => e.endsWith(' early'));
    expect(early).toHaveLength(2);
    for (const e of early) {
      const name = e.split(' ')[1]!;
      expect(events.indexOf(`rebuild ${name}`)).toBeGreaterThan(events.indexOf(e));
      const got = await request(ours.port, 'GET', `/sdb/${PART}/AUTH_t/c/${name}`, { 'X-Backend-Storage-Policy-Index': '1' });
      expect(got.status).toBe(200);
      expect(Buffer.compare(got.body, bodyOf(name))).toBe(0);
    }
  });

  it('without speculate, nothing is rebuilt before the receiver answers', async () => {
    const root = await freshReceiver('dst5');
    const release = await acquireLock(join(root, 'sdb'), { timeout: 5 });
    const { events, rebuild } = recorder();
    const sending = ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: ours.port, device: 'sdb', backendIndex: 2 }, { ...opts, rebuild });
    await new Promise((r) => setTimeout(r, 200));
    expect(events).toEqual([]);
    release();
    expect((await sending).sent).toBe(N);
  });
});
