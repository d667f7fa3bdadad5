// SSYNC sessions that go wrong, written byte by byte and played against fragmend's receiver and
// a real swift-object-server: where Swift's answer is defined by its code, fragmend's must be the
// same bytes (chunk by chunk); where the sender breaks off mid-object, nothing it sent may be
// left on disk, and the server must go on answering.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/swift/locks.js';
import { parseReplicatePickle } from '../../src/swift/hashes.js';
import { parseReplicateBatch } from '../../src/replication/replicate.js';
import type { ObjectServer } from '../../src/server/object-server.js';
import { makeSandbox, request, SsyncSession, ssyncScript, startOurServer, startSwiftServer, swiftOps, type LogCapture, type Sandbox, type SwiftServer, realSwiftEnabled } from './harness.js';

const PART = 3;
const FI = 1;
const enabled = realSwiftEnabled();
const POLICY_HDR = { 'X-Backend-Storage-Policy-Index': '1' };

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...listFiles(join(dir, e.name)).map((f) => `${e.name}/${f}`));
    else out.push(e.name);
  }
  return out;
}

describe.runIf(enabled)('SSYNC receiver: the same answers as Swift, and nothing half-received left behind', () => {
  let sbx: Sandbox;
  let ours: { server: ObjectServer; port: number; logs: LogCapture };
  let swift: SwiftServer;
  let oursSlow: { server: ObjectServer; port: number; logs: LogCapture };
  let swiftSlow: SwiftServer;
  const base = Math.floor(Date.now() / 1000) - 3000;
  const T = (i: number) => `${base + i}.00000`;
  let hash: (o: string) => string;
  const body = Buffer.alloc(700, 7);
  const etag = createHash('md5').update(body).digest('hex');

  const seed = (devices: string) =>
    swiftOps(sbx, [
      {
        op: 'put',
        devices,
        device: 'sdb',
        partition: PART,
        account: 'AUTH_test',
        container: 'c',
        object: 'present',
        frag_index: FI,
        metadata: { 'X-Timestamp': T(10), 'Content-Type': 'text/plain', 'X-Object-Sysmeta-Ec-Frag-Index': String(FI) },
        // Not a real fragment archive: only the receiving side reads these files here.
        body: Buffer.alloc(100, 1).toString('base64'),
      },
    ]);

  beforeAll(async () => {
    sbx = makeSandbox('ssync-faults');
    const ourDevices = sbx.devices('ours');
    const swiftDevices = sbx.devices('swift');
    // One SSYNC at a time and a 1 s lock timeout, so admission and locking can be provoked.
    ours = await startOurServer(sbx, ourDevices, { replicationConcurrency: 1, replicationLockTimeout: 1 });
    swift = await startSwiftServer(sbx, 'swift-faults', swiftDevices, { replication_concurrency: 1, replication_lock_timeout: 1 });
    oursSlow = await startOurServer(sbx, sbx.devices('ours-slow'), { clientTimeout: 1 });
    swiftSlow = await startSwiftServer(sbx, 'swift-slow', sbx.devices('swift-slow'), { client_timeout: 1 });
    await seed(ourDevices);
    await seed(swiftDevices);
    hash = (o) => ours.server.manager.hashOf('AUTH_test', 'c', o);
  });

  afterAll(async () => {
    await ours?.server.stop();
    await oursSlow?.server.stop();
    await swift?.stop();
    await swiftSlow?.stop();
    sbx?.cleanup();
  });

  /** Both servers' responses to the same session, with device paths made comparable. */
  async function both(messages: string[], opts: { finish?: boolean; fragIndex?: number } = {}) {
    const run = async (port: number, devices: string) => {
      const r = await ssyncScript(port, 'sdb', PART, messages, { fragIndex: opts.fragIndex ?? FI, finish: opts.finish });
      return { ...r, chunks: r.chunks.map((c) => c.split(devices).join('<devices>')), headers: undefined, accept: r.headers.find(([k]) => k === 'X-Backend-Accept-No-Commit')?.[1] };
    };
    const a = await run(ours.port, ours.server.options.devices);
    const b = await run(swift.port, swift.devices);
    return { a, b };
  }

  const MC = [':MISSING_CHECK: START\r\n', ':MISSING_CHECK: END\r\n'];
  const UP = [':UPDATES: START\r\n', ':UPDATES: END\r\n'];

  it('in-sync and wanted offers get the same replies, chunk for chunk', async () => {
    const { a, b } = await both([
      MC[0]!,
      `${hash('present')} ${T(10)}\r\n`,
      `${hash('present')} ${T(11)}\r\n`,
      `${hash('present')} ${T(10)} m:186a0\r\n`,
      `${hash('present')} ${T(10)} m:186a0,t:186a0\r\n`,
      `${hash('absent')} ${T(10)} durable:False\r\n`,
      MC[1]!,
      ...UP,
    ]);
    expect(a).toEqual(b);
    expect(a.status).toBe(200);
    expect(a.accept).toBe('True');
    expect(a.final).toBe(true);
    expect(a.chunks).toEqual([
      '\r\n',
      ':MISSING_CHECK: START\r\n',
      `${hash('present')} dm\r\n${hash('present')} m\r\n${hash('present')} m\r\n${hash('absent')} dm`,
      '\r\n',
      ':MISSING_CHECK: END\r\n',
      ':UPDATES: START\r\n',
      ':UPDATES: END\r\n',
    ]);
  });

  const errorCases: Array<[string, string[], RegExp]> = [
    ['an unknown subrequest method', [...MC, UP[0]!, 'BOGUS /a/c/o\r\n', '\r\n', UP[1]!], /^:ERROR: 0 'Invalid subrequest method BOGUS'\n$/],
    ['garbage instead of :MISSING_CHECK: START', ['garbage\r\n'], /^:ERROR: 0 "Looking for :MISSING_CHECK: START got b'garbage\\\\r\\\\n'"\n$/],
    ['garbage instead of :UPDATES: START', [...MC, 'nonsense\r\n'], /^:ERROR: 0 "Looking for :UPDATES: START got b'nonsense\\\\r\\\\n'"\n$/],
    ['a DELETE with a body', [...MC, UP[0]!, 'DELETE /AUTH_test/c/x\r\nContent-Length: 3\r\nX-Timestamp: 1.0\r\n\r\n', UP[1]!], /^:ERROR: 0 'DELETE subrequest with content-length \/AUTH_test\/c\/x'\n$/],
    ['a PUT without Content-Length', [...MC, UP[0]!, 'PUT /AUTH_test/c/x\r\nX-Timestamp: 1.0\r\n\r\n', UP[1]!], /^:ERROR: 0 'No content-length sent for PUT \/AUTH_test\/c\/x'\n$/],
    ['a subrequest cut off inside its headers', [...MC, UP[0]!, 'PUT /AUTH_test/c/x\r\nContent-Length: 3\r\n'], /^:ERROR: 0 'Got no headers for PUT \/AUTH_test\/c\/x'\n$/],
    [
      'a subrequest line without a path',
      [...MC, UP[0]!, 'DELETE\r\n', '\r\n', UP[1]!],
      /^:ERROR: 0 'not enough values to unpack \(expected 2, got 1\)'\n$/,
    ],
    [
      'failed subrequests (a bad path, an ETag that does not match the body)',
      [
        ...MC,
        UP[0]!,
        `DELETE /AUTH_test/c\r\nX-Timestamp: ${T(5)}\r\n\r\n`,
        `PUT /AUTH_test/c/bad-etag\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain\r\nETag: ${'0'.repeat(32)}\r\nX-Object-Sysmeta-Ec-Frag-Index: ${FI}\r\nX-Timestamp: ${T(6)}\r\n\r\n`,
        body.toString('latin1'),
        `POST /AUTH_test/c/missing\r\nX-Timestamp: ${T(7)}\r\n\r\n`,
        UP[1]!,
      ],
      /^:ERROR: 500 b'ERROR: With :UPDATES: 2 failures to 1 successes'\n$/,
    ],
    [
      // fragmend finishes a PUT while it reads the next one's body: the failure still counts
      'a PUT that fails once its whole body is in, then one that succeeds',
      [
        ...MC,
        UP[0]!,
        `PUT /AUTH_test/c/bad-etag-2\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain\r\nETag: ${'0'.repeat(32)}\r\nX-Object-Sysmeta-Ec-Frag-Index: ${FI}\r\nX-Timestamp: ${T(12)}\r\n\r\n`,
        body.toString('latin1'),
        `PUT /AUTH_test/c/good-after-bad\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain\r\nETag: ${etag}\r\nX-Object-Sysmeta-Ec-Frag-Index: ${FI}\r\nX-Timestamp: ${T(13)}\r\n\r\n`,
        body.toString('latin1'),
        UP[1]!,
      ],
      /^:ERROR: 500 b'ERROR: With :UPDATES: 1 failures to 1 successes'\n$/,
    ],
  ];
  for (const [what, messages, line] of errorCases) {
    it(`${what}: the same ':ERROR:' line, then the connection is dropped`, async () => {
      const { a, b } = await both(messages);
      expect(a).toEqual(b);
      expect(a.final).toBe(false);
      expect(a.chunks[a.chunks.length - 1]).toMatch(line);
    });
  }

  it('a garbled missing_check line is an error on both (the messages differ: Python exception text)', async () => {
    const { a, b } = await both([MC[0]!, 'not-a-hash\r\n', MC[1]!, ...UP]);
    for (const r of [a, b]) {
      expect(r.final).toBe(false);
      expect(r.chunks).toEqual(['\r\n', expect.stringMatching(/^:ERROR: 0 /)]);
    }
  });

  it('a sender past replication_concurrency is turned away with 503, as by Swift', async () => {
    const run = async (port: number) => {
      const first = new SsyncSession(port, `/sdb/${PART}`, { ...POLICY_HDR, 'X-Backend-Ssync-Frag-Index': String(FI) });
      await first.waitFor('\r\n');
      await new Promise((r) => setTimeout(r, 200));
      try {
        return await ssyncScript(port, 'sdb', PART, [...MC, ...UP], { fragIndex: FI });
      } finally {
        first.destroy();
      }
    };
    const a = await run(ours.port);
    const b = await run(swift.port);
    expect(a.chunks).toEqual(b.chunks);
    expect(a.chunks[1]).toBe(
      ":ERROR: 503 b'<html><h1>Service Unavailable</h1><p>The server is currently unavailable. Please try again at a later time.</p></html>'\n",
    );
    // The first session's slot is given back when it goes away.
    await new Promise((r) => setTimeout(r, 300));
    const again = await ssyncScript(ours.port, 'sdb', PART, [...MC, ...UP], { fragIndex: FI });
    expect(again.final).toBe(true);
  });

  it("a partition whose replication lock someone else holds: ':ERROR: 0' with Swift's LockTimeout text", async () => {
    const run = async (port: number, devices: string) => {
      const release = await acquireLock(join(devices, 'sdb', 'objects-1', String(PART)), { name: 'replication', timeout: 1 });
      try {
        const r = await ssyncScript(port, 'sdb', PART, [...MC, ...UP], { fragIndex: FI });
        return r.chunks.map((c) => c.split(devices).join('<devices>'));
      } finally {
        release();
      }
    };
    const a = await run(ours.port, ours.server.options.devices);
    const b = await run(swift.port, swift.devices);
    expect(a).toEqual(b);
    expect(a[1]).toBe(`:ERROR: 0 '1 second: <devices>/sdb/objects-1/${PART}/.lock-replication'\n`);
    // Released: the next session goes through.
    expect((await ssyncScript(ours.port, 'sdb', PART, [...MC, ...UP], { fragIndex: FI })).final).toBe(true);
  });

  it("a sender that stops talking gets ':ERROR: 408' after client_timeout, as from Swift", async () => {
    const run = async (port: number) => (await ssyncScript(port, 'sdb', PART, [MC[0]!], { fragIndex: FI, finish: false })).chunks;
    const a = await run(oursSlow.port);
    const b = await run(swiftSlow.port);
    expect(a).toEqual(b);
    expect(a).toEqual(['\r\n', ":ERROR: 408 '1.0 second: missing_check line'\n"]);
  });

  it('bad requests are refused before the session starts (400, 507), as by Swift', async () => {
    for (const [path, headers, status] of [
      [`/sdb/${PART}`, { 'X-Backend-Ssync-Frag-Index': 'x' }, 400],
      [`/nodev/${PART}`, {}, 507],
      [`/sdb/${PART}/extra`, {}, 400],
    ] as Array<[string, Record<string, string>, number]>) {
      for (const port of [ours.port, swift.port]) {
        const s = new SsyncSession(port, path, { ...POLICY_HDR, ...headers });
        s.finish();
        const r = await s.waitDone();
        s.destroy();
        expect(r.status, `${path} on ${port === ours.port ? 'fragmend' : 'Swift'}`).toBe(status);
      }
    }
  });

  /** A session that offers `obj` and starts sending its PUT, leaving the rest to `then`. */
  async function partialPut(port: number, obj: string, then: (s: SsyncSession) => void): Promise<SsyncSession> {
    const s = new SsyncSession(port, `/sdb/${PART}`, { ...POLICY_HDR, 'X-Backend-Ssync-Frag-Index': String(FI) });
    s.send(MC[0]!);
    s.send(`${hash(obj)} ${T(20)}\r\n`);
    s.send(MC[1]!);
    expect(await s.waitFor(MC[1]!)).toContain(`${hash(obj)} dm`);
    s.send(UP[0]!);
    s.send(
      `PUT /AUTH_test/c/${obj}\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain\r\nETag: ${etag}\r\n` +
        `X-Object-Sysmeta-Ec-Frag-Index: ${FI}\r\nX-Timestamp: ${T(20)}\r\n\r\n`,
    );
    s.send(body.subarray(0, 300));
    then(s);
    return s;
  }

  it('a REPLICATE of a partition waits for the SSYNC session under way into it, and answers with what the session left', async () => {
    const s = new SsyncSession(ours.port, `/sdb/${PART}`, { ...POLICY_HDR, 'X-Backend-Ssync-Frag-Index': String(FI) });
    s.send(MC[0]!);
    s.send(`${hash('during')} ${T(30)}\r\n`);
    s.send(MC[1]!);
    expect(await s.waitFor(MC[1]!)).toContain(`${hash('during')} dm`);
    s.send(UP[0]!);
    s.send(
      `PUT /AUTH_test/c/during\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain\r\nETag: ${etag}\r\n` +
        `X-Object-Sysmeta-Ec-Frag-Index: ${FI}\r\nX-Timestamp: ${T(30)}\r\n\r\n`,
    );
    s.send(body);
    let answered = false;
    const replicate = request(ours.port, 'REPLICATE', `/sdb/${PART}`, POLICY_HDR).then((r) => {
      answered = true;
      return r;
    });
    // another partition's REPLICATE is answered at once
    expect((await request(ours.port, 'REPLICATE', `/sdb/${PART + 1}`, POLICY_HDR)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 400));
    expect(answered).toBe(false);
    s.send(UP[1]!);
    s.finish();
    expect((await s.waitDone()).body).toContain(UP[1]!.trim());
    s.destroy();
    const r = await replicate;
    expect(r.status).toBe(200);
    expect(parseReplicatePickle(r.body).has(hash('during').slice(-3))).toBe(true);
  });

  it('a batched REPLICATE does not hash ahead a partition that SSYNC sessions pushed into lately', async () => {
    // PART has just had sessions (above); OTHER gets an object by a plain PUT, and neither has a
    // hashes.pkl: a batch hashes OTHER whole as its own REPLICATE would, and leaves PART out
    const OTHER = PART + 5;
    const put = await request(
      ours.port,
      'PUT',
      `/sdb/${OTHER}/AUTH_test/c/elsewhere`,
      { ...POLICY_HDR, 'Content-Length': String(body.length), 'Content-Type': 'text/plain', 'X-Timestamp': T(40), 'X-Object-Sysmeta-Ec-Frag-Index': String(FI), ETag: etag },
      body,
    );
    expect(put.status).toBe(201);
    const pkl = (p: number) => join(ours.server.options.devices, 'sdb', 'objects-1', String(p), 'hashes.pkl');
    rmSync(pkl(PART), { force: true });
    rmSync(pkl(OTHER), { force: true });
    const r = await request(ours.port, 'REPLICATE', `/sdb/${PART + 1}`, { ...POLICY_HDR, 'X-Fragmend-Replicate-Batch': `${PART},${OTHER}` });
    expect(r.status).toBe(200);
    const got = parseReplicateBatch(r.body, 'ours');
    expect([...got.keys()]).toEqual([PART + 1, OTHER]);
    expect(got.get(OTHER)!.has(hash('elsewhere').slice(-3))).toBe(true);
    expect(existsSync(pkl(OTHER))).toBe(true);
    expect(existsSync(pkl(PART))).toBe(false);
    // asked alone, PART is hashed whole as always
    const alone = await request(ours.port, 'REPLICATE', `/sdb/${PART}`, POLICY_HDR);
    expect(parseReplicatePickle(alone.body).has(hash('during').slice(-3))).toBe(true);
  });

  it('a session that lingers delays a REPLICATE of its partition by replicateWaitMs at most', async () => {
    const opts = ours.server.options as { replicateWaitMs: number };
    const was = opts.replicateWaitMs;
    opts.replicateWaitMs = 300;
    const s = new SsyncSession(ours.port, `/sdb/${PART}`, { ...POLICY_HDR, 'X-Backend-Ssync-Frag-Index': String(FI) });
    try {
      s.send(MC[0]!);
      await new Promise((r) => setTimeout(r, 100));
      const t0 = Date.now();
      const r = await request(ours.port, 'REPLICATE', `/sdb/${PART}`, POLICY_HDR);
      const waited = Date.now() - t0;
      expect(r.status).toBe(200);
      expect(waited).toBeGreaterThanOrEqual(250);
      expect(waited).toBeLessThan(1500);
    } finally {
      opts.replicateWaitMs = was;
      s.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(ours.server.replicationSessions).toBe(0);
  });

  const leftovers = (devices: string, obj: string) => [
    ...listFiles(join(devices, 'sdb', 'objects-1', String(PART), hash(obj).slice(-3), hash(obj))),
    ...listFiles(join(devices, 'sdb', 'tmp-1')),
  ];

  it('a sender that disconnects in the middle of a PUT body leaves nothing behind; the server keeps serving', async () => {
    for (const [port, devices] of [
      [ours.port, ours.server.options.devices],
      [swift.port, swift.devices],
    ] as Array<[number, string]>) {
      const s = await partialPut(port, 'cut-off', (x) => setTimeout(() => x.destroy(), 100));
      await s.waitDone();
      await new Promise((r) => setTimeout(r, 300));
      expect(leftovers(devices, 'cut-off')).toEqual([]);
    }
    await ours.logs.waitFor(/ssync subrequest failed with 499|read failed in ssync\.Receiver|ssync client disconnected/);
    expect(ours.server.replicationSessions).toBe(0);
    const r = await request(ours.port, 'GET', `/sdb/${PART}/AUTH_test/c/cut-off`, POLICY_HDR);
    expect(r.status).toBe(404);
    expect((await request(ours.port, 'REPLICATE', `/sdb/${PART}`, POLICY_HDR)).status).toBe(200);
  });

  it('a PUT body shorter than its Content-Length (the sender ends the stream) is never committed', async () => {
    const results = [];
    for (const [port, devices] of [
      [ours.port, ours.server.options.devices],
      [swift.port, swift.devices],
    ] as Array<[number, string]>) {
      const s = await partialPut(port, 'short', (x) => x.finish());
      const r = await s.waitDone();
      s.destroy();
      results.push(r.chunks.slice(5));
      expect(leftovers(devices, 'short')).toEqual([]);
    }
    expect(results[0]).toEqual(results[1]);
    expect(results[0]).toEqual([":ERROR: 500 b'ERROR: With :UPDATES: 1 failures to 0 successes'\n"]);
    expect((await request(ours.port, 'GET', `/sdb/${PART}/AUTH_test/c/short`, POLICY_HDR)).status).toBe(404);
  });

  it('a sender that stalls inside a PUT body: 408, nothing committed', async () => {
    const s = new SsyncSession(oursSlow.port, `/sdb/${PART}`, { ...POLICY_HDR, 'X-Backend-Ssync-Frag-Index': String(FI) });
    s.send(MC[0]!);
    s.send(`${hash('stall')} ${T(20)}\r\n`);
    s.send(MC[1]!);
    await s.waitFor(MC[1]!);
    s.send(UP[0]!);
    s.send(`PUT /AUTH_test/c/stall\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain\r\nX-Object-Sysmeta-Ec-Frag-Index: ${FI}\r\nX-Timestamp: ${T(20)}\r\n\r\n`);
    s.send(body.subarray(0, 100));
    const r = await s.waitDone();
    s.destroy();
    expect(r.final).toBe(false);
    expect(r.chunks[r.chunks.length - 1]).toBe(":ERROR: 408 '1.0 second: updates content'\n");
    expect(leftovers(oursSlow.server.options.devices, 'stall')).toEqual([]);
  });

  it('an oversize line or broken chunk framing ends the session; the server keeps serving', async () => {
    const long = await ssyncScript(ours.port, 'sdb', PART, [MC[0]!, 'a'.repeat(70_000) + '\r\n'], { fragIndex: FI });
    expect(long.final).toBe(false);
    expect(long.chunks[1]).toBe(":ERROR: 0 'missing_check line: line longer than 65536 bytes'\n");

    const s = new SsyncSession(ours.port, `/sdb/${PART}`, { ...POLICY_HDR, 'X-Backend-Ssync-Frag-Index': String(FI) });
    s.send(MC[0]!);
    s.sendRaw('zz\r\nnot chunked at all\r\n');
    const r = await s.waitDone();
    s.destroy();
    expect(r.final).toBe(false);
    await ours.logs.waitFor(/read failed in ssync\.Receiver/);
    expect((await request(ours.port, 'HEAD', `/sdb/${PART}/AUTH_test/c/present`, POLICY_HDR)).status).toBe(200);
    expect(ours.server.replicationSessions).toBe(0);
  });
});
