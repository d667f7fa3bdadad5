// The SSYNC sender when the other side misbehaves: a receiver that hangs up in the middle of a
// PUT body, one that never answers, and one that answers with an :ERROR: line. Each ends the
// session with success false and a message saying what happened; nothing escapes as a crash.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { fakeSsyncReceiver } from '../helpers/fake-ssync-receiver.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { ssyncSend, type ArchiveSource } from '../../src/replication/ssync-sender.js';
import { ConfigParser } from '../../src/swift/conf.js';
import { ECDiskFileManager } from '../../src/swift/diskfile.js';
import { parseSwiftConf, type StoragePolicy } from '../../src/swift/policies.js';
import { Timestamp } from '../../src/swift/timestamp.js';

const root = mkdtempSync(join(tmpdir(), 'fragmend-sender-'));
let policy: StoragePolicy;
let mgr: ECDiskFileManager;
let suffix: string;
const servers: Server[] = [];

beforeAll(async () => {
  const p = new ConfigParser({ strict: false });
  p.readString('[swift-hash]\nswift_hash_path_suffix = s\n[storage-policy:0]\nname = r\ndefault = yes\n[storage-policy:1]\nname = ec\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n');
  policy = parseSwiftConf(p).policies.byIndex(1)!;
  mkdirSync(join(root, 'sda'));
  mgr = new ECDiskFileManager({ devices: root, mountCheck: false, hashPrefix: '', hashSuffix: 's' });
  const df = mgr.diskFile(join(root, 'sda'), 0, 'a', 'c', 'o', policy, { fragIndex: 1 });
  const ts = Timestamp.now();
  // a real archive (a push checks its fragment header and MD5 as it reads it)
  const ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
  const archive = ec.encode(new Uint8Array(1000).fill(7))[1]!;
  const w = df.writer();
  await w.open();
  await w.write(archive);
  await w.put({ 'X-Timestamp': ts.internal, 'Content-Length': String(archive.length), ETag: createHash('md5').update(archive).digest('hex'), 'X-Object-Sysmeta-Ec-Frag-Index': '1' });
  await w.commit(ts);
  await w.close();
  suffix = df.hash.slice(-3);
});
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(root, { recursive: true, force: true });
});

/** The fake receiver's port; it is closed after the suite. */
async function fakeReceiver(after: (sock: Socket) => void): Promise<number> {
  const { port, server } = await fakeSsyncReceiver(after);
  servers.push(server);
  return port;
}

const slowBody = (metadata: Record<string, string>): ArchiveSource => ({
  metadata,
  contentLength: 1_000_000,
  body: (async function* () {
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 5));
      yield new Uint8Array(10_000);
    }
  })(),
});

describe('SSYNC sender faults', () => {
  const job = () => ({ devPath: join(root, 'sda'), partition: 0, policy, fragIndex: 1, suffixes: [suffix] });
  const opts = { connTimeout: 1, nodeTimeout: 1, httpTimeout: 1 };

  it('a receiver that dies mid-PUT fails the session cleanly', async () => {
    const port = await fakeReceiver((sock) => setTimeout(() => sock.destroy(), 20));
    const r = await ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: port, device: 'sdb', backendIndex: 2 }, { ...opts, rebuild: async (df) => slowBody(df.datafileMetadata) });
    expect(r.success).toBe(false);
    expect(r.inSync.size).toBe(0);
    expect(r.error).toMatch(/connection closed|EPIPE|ECONNRESET|Early disconnect/);
  });

  it('a receiver that stops answering times out', async () => {
    const port = await fakeReceiver(() => undefined);
    const t0 = Date.now();
    const r = await ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: port, device: 'sdb', backendIndex: 2 }, opts);
    expect(r.success).toBe(false);
    expect(r.error).toMatch(/seconds: updates start wait/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("an :ERROR: line from the receiver is reported as the receiver's words", async () => {
    const port = await fakeReceiver((sock) => {
      const msg = ":ERROR: 500 'ERROR: With :UPDATES: 1 failures to 0 successes'\n";
      sock.end(`${msg.length.toString(16)}\r\n${msg}\r\n0\r\n\r\n`);
    });
    const r = await ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: port, device: 'sdb', backendIndex: 2 }, opts);
    expect(r.success).toBe(false);
    expect(r.error).toMatch(/:ERROR: 500/);
  });

  it('a refused connection is a failed session, not a crash', async () => {
    const srv = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as { port: number }).port;
    srv.close();
    const r = await ssyncSend(mgr, job(), { replication_ip: '127.0.0.1', replication_port: port, device: 'sdb', backendIndex: 2 }, opts);
    expect(r).toMatchObject({ success: false });
    expect(r.error).toMatch(/ECONNREFUSED|connect/);
  });
});
