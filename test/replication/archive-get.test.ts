// The rebuild's readers: a GET read in place over a plain socket, and the local archive read
// from disk. The servers here are plain sockets that answer with exactly the bytes a test
// wants, so framing faults (truncation, chunked bodies, huge headers, stalls) can be made.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ArchiveReadError, closeIdleArchiveConnections, getArchive, LocalArchive } from '../../src/replication/archive-get.js';
import { PeerTimeout } from '../../src/replication/peers.js';

interface Fake {
  port: number;
  requests: string[];
  /** connections accepted so far */
  connections: () => number;
  close(): Promise<void>;
}

/** A server that hands each connection's request text to `answer`, which writes what it likes. */
async function fake(answer: (sock: Socket, request: string) => void | Promise<void>): Promise<Fake> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((sock) => {
    accepted++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let text = '';
    sock.on('data', (d) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end >= 0 && text !== '') {
        const req = text.slice(0, end);
        text = '';
        requests.push(req);
        void answer(sock, req);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    requests,
    connections: () => accepted,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const servers: Fake[] = [];
afterEach(async () => {
  closeIdleArchiveConnections();
  for (const s of servers.splice(0)) await s.close();
});

const get = (port: number, headers: Record<string, string> = {}, headerTimeoutMs = 2000) =>
  getArchive({ ip: '127.0.0.1', port, path: '/sda/7/a/c/o', headers, connTimeoutMs: 2000, headerTimeoutMs });

const head200 = (len: number, extra = '') => `HTTP/1.1 200 OK\r\nContent-Length: ${len}\r\nX-Object-Sysmeta-Ec-Frag-Index: 3\r\nX-Test: a\r\nx-test: b\r\n${extra}\r\n`;

async function readAll(r: { read(n: number): Promise<Uint8Array> }, n: number, pauseMs = 0): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (;;) {
    const b = await r.read(n);
    if (!b.length) break;
    parts.push(Buffer.from(b));
    if (pauseMs) await new Promise((res) => setTimeout(res, pauseMs));
  }
  return Buffer.concat(parts);
}

describe('a GET read in place', () => {
  it('sends the request line and headers, and parses status and headers', async () => {
    const body = randomBytes(1000);
    const s = await fake((sock) => sock.end(Buffer.concat([Buffer.from(head200(body.length)), body])));
    servers.push(s);
    const r = await get(s.port, { 'X-Backend-Storage-Policy-Index': '1' });
    expect(r.statusCode).toBe(200);
    expect(r.contentLength).toBe(1000);
    expect(r.headers['x-object-sysmeta-ec-frag-index']).toBe('3');
    expect(r.headers['x-test']).toBe('a, b');
    expect(await readAll(r, 300)).toEqual(body);
    expect(s.requests[0]).toMatch(/^GET \/sda\/7\/a\/c\/o HTTP\/1\.1\r\n/);
    expect(s.requests[0]).toContain('\r\nX-Backend-Storage-Policy-Index: 1');
    expect(s.requests[0]).toContain(`\r\nHost: 127.0.0.1:${s.port}`);
    // kept alive: HTTP/1.1's default, so no Connection header
    expect(s.requests[0]).not.toMatch(/\r\nConnection:/i);
  });

  it('delivers a big body intact in fragment-sized reads, whatever the write sizes and the reader pauses', async () => {
    const body = randomBytes(5 * 262_224 + 12_345);
    const s = await fake(async (sock) => {
      sock.write(head200(body.length));
      // odd write sizes, with gaps, so reads land across fragment boundaries
      let at = 0;
      let i = 0;
      while (at < body.length) {
        const n = [1, 4096, 100_000, 777, 300_000][i++ % 5]!;
        const ok = sock.write(body.subarray(at, at + n));
        at += n;
        if (!ok) await new Promise((r) => sock.once('drain', r));
        if (i % 7 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      sock.end();
    });
    servers.push(s);
    const r = await get(s.port);
    expect(await readAll(r, 262_224, 3)).toEqual(body);
    // reading past the end gives nothing, again
    expect((await r.read(10)).length).toBe(0);
    r.close();
  });

  it('keeps every byte in order when the read sizes change from one read to the next', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 5);
    const s = await fake((sock) => {
      sock.write(head200(body.length));
      sock.end(body);
    });
    servers.push(s);
    const r = await get(s.port);
    const sizes = [262_224, 1000, 5, 300_000, 70_000, 262_224, 1, 131_072];
    const parts: Buffer[] = [];
    for (let i = 0; ; i++) {
      const b = await r.read(sizes[i % sizes.length]!);
      if (!b.length) break;
      parts.push(Buffer.from(b));
      if (i % 3 === 0) await new Promise((res) => setTimeout(res, 1));
    }
    expect(Buffer.concat(parts)).toEqual(body);
  });

  it('returns each read in the same buffer: nothing is allocated per fragment', async () => {
    const body = randomBytes(4 * 65_536);
    const s = await fake((sock) => sock.end(Buffer.concat([Buffer.from(head200(body.length)), body])));
    servers.push(s);
    const r = await get(s.port);
    const a = await r.read(65_536);
    const b = await r.read(65_536);
    expect(a.buffer).toBe(b.buffer);
    expect(a.byteOffset).toBe(b.byteOffset);
    expect(Buffer.from(b)).toEqual(body.subarray(65_536, 131_072));
    r.close();
  });

  it("checks the archive against its response's ETag: the read handing out the last bytes fails when they do not match", async () => {
    const body = randomBytes(3 * 262_224 + 999);
    const good = createHash('md5').update(body).digest('hex');
    const bad = createHash('md5').update('something else').digest('hex');
    const serve = async (extra: string) => {
      const s = await fake(async (sock) => {
        sock.write(head200(body.length, extra));
        // in pieces, so reads are handed out both as bytes arrive and from bytes already in
        for (let at = 0; at < body.length; at += 100_000) {
          sock.write(body.subarray(at, at + 100_000));
          await new Promise((r) => setTimeout(r, 1));
        }
      });
      servers.push(s);
      return get(s.port);
    };
    // a matching ETag, quoted as Swift sends it, or none: read whole
    for (const extra of [`Etag: "${good}"\r\n`, `ETag: ${good.toUpperCase()}\r\n`, '']) {
      const r = await serve(extra);
      expect(await readAll(r, 262_224)).toEqual(body);
    }
    // an ETag its bytes do not match: every read but the one with the last bytes goes through
    const r = await serve(`Etag: "${bad}"\r\n`);
    for (let i = 0; i < 3; i++) expect(Buffer.from(await r.read(262_224))).toEqual(body.subarray(i * 262_224, (i + 1) * 262_224));
    await expect(r.read(262_224)).rejects.toThrow(new RegExp(`/sda/7/a/c/o does not match its ETag ${bad} \\(its MD5 is ${good}\\)`));
    await expect(r.read(1)).rejects.toBeInstanceOf(ArchiveReadError);
    // a server that says it checked the MD5 before sending the last byte is not checked again
    const trusted = await serve(`Etag: "${bad}"\r\nX-Backend-Archive-Checked: etag\r\n`);
    expect(await readAll(trusted, 262_224)).toEqual(body);
    // nor is anything, when the caller said not to (check_peer_etag = false)
    const s = await fake((sock) => sock.end(Buffer.concat([Buffer.from(head200(body.length, `Etag: "${bad}"\r\n`)), body])));
    servers.push(s);
    const unchecked = await getArchive({ ip: '127.0.0.1', port: s.port, path: '/sda/7/a/c/o', headers: {}, connTimeoutMs: 2000, headerTimeoutMs: 2000, checkEtag: false });
    expect(await readAll(unchecked, 262_224)).toEqual(body);
  });

  it('a body cut short of its Content-Length is an error, not a short fragment', async () => {
    const s = await fake((sock) => sock.end(Buffer.concat([Buffer.from(head200(10_000)), randomBytes(6000)])));
    servers.push(s);
    const r = await get(s.port);
    await expect(r.read(4000)).resolves.toHaveLength(4000);
    await expect(r.read(4000)).rejects.toThrow(/short of its Content-Length/);
  });

  it('a 200 without a Content-Length, or chunked, is refused at the headers', async () => {
    const chunked = await fake((sock) => sock.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'));
    const bare = await fake((sock) => sock.end('HTTP/1.1 200 OK\r\nX: y\r\n\r\nhello'));
    servers.push(chunked, bare);
    await expect(get(chunked.port)).rejects.toThrow(/chunked.*Content-Length/);
    await expect(get(bare.port)).rejects.toThrow(/no Content-Length/);
  });

  it('an error status comes back with its headers; garbage is a typed error', async () => {
    const nf = await fake((sock) => sock.end('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nX-Backend-Timestamp: 1700000000.00000\r\n\r\nNot Found'));
    const junk = await fake((sock) => sock.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
    const badHeader = await fake((sock) => sock.end('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n'));
    servers.push(nf, junk, badHeader);
    const r = await get(nf.port);
    expect(r.statusCode).toBe(404);
    expect(r.headers['x-backend-timestamp']).toBe('1700000000.00000');
    r.close();
    await expect(get(junk.port)).rejects.toBeInstanceOf(ArchiveReadError);
    await expect(get(badHeader.port)).rejects.toThrow(/bad header line/);
  });

  it('headers that never end are cut off at 1 MiB', async () => {
    const s = await fake(async (sock) => {
      sock.write('HTTP/1.1 200 OK\r\n');
      const line = `X-Pad: ${'p'.repeat(1000)}\r\n`;
      for (let i = 0; i < 1200 && !sock.destroyed; i++) {
        if (!sock.write(line)) await new Promise((r) => sock.once('drain', r));
      }
    });
    servers.push(s);
    await expect(get(s.port)).rejects.toThrow(/headers over 1048576 bytes/);
  });

  it('a peer that accepts and never answers times out; a closed port is refused', async () => {
    const mute = await fake(() => undefined);
    servers.push(mute);
    const t0 = Date.now();
    await expect(get(mute.port, {}, 300)).rejects.toBeInstanceOf(PeerTimeout);
    expect(Date.now() - t0).toBeLessThan(2000);
    const closed = await fake(() => undefined);
    const port = closed.port;
    await closed.close();
    await expect(get(port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('a peer that stops mid-body leaves the read pending until the caller gives up and closes', async () => {
    const s = await fake((sock) => sock.write(Buffer.concat([Buffer.from(head200(100_000)), randomBytes(50_000)])));
    servers.push(s);
    const r = await get(s.port);
    await expect(r.read(40_000)).resolves.toHaveLength(40_000);
    const pending = r.read(40_000);
    const outcome = await Promise.race([pending.then(() => 'resolved', () => 'rejected'), new Promise((res) => setTimeout(() => res('pending'), 200))]);
    expect(outcome).toBe('pending');
    r.close();
    await expect(r.read(1)).rejects.toThrow();
  });

  it('refuses header values that would split the request', async () => {
    await expect(get(1, { 'X-Evil': 'a\r\nX-Injected: 1' })).rejects.toThrow(/cannot be sent/);
  });
});

describe('kept connections', () => {
  const answerWith = (bodies: Buffer[], extra = '') => (sock: Socket) => {
    const body = bodies.shift() ?? Buffer.alloc(0);
    sock.write(Buffer.concat([Buffer.from(head200(body.length, extra)), body]));
  };

  it('a response read to its end leaves its connection for the next GET to the peer', async () => {
    const bodies = [randomBytes(70_000), randomBytes(5), randomBytes(300_000)];
    const want = bodies.slice();
    const s = await fake(answerWith(bodies));
    servers.push(s);
    for (const body of want) {
      const r = await get(s.port);
      expect(Buffer.compare(await readAll(r, 65_536), body)).toBe(0);
      r.close();
    }
    expect(s.requests).toHaveLength(3);
    expect(s.connections()).toBe(1);
  });

  it('is not reused after a response read in part, one the server closes, or one with bytes beyond its length', async () => {
    const s = await fake((sock, req) => {
      const n = s.requests.length;
      // half the body, then nothing: the reader gives up on the rest
      if (n === 1) sock.write(Buffer.concat([Buffer.from(head200(1000)), randomBytes(500)]));
      else if (n === 2) sock.write(Buffer.concat([Buffer.from(head200(10, 'Connection: close\r\n')), randomBytes(10)]));
      else if (n === 3) sock.write(Buffer.concat([Buffer.from(head200(10)), randomBytes(10), Buffer.from('junk')]));
      else sock.write(Buffer.concat([Buffer.from(head200(3)), Buffer.from(req.slice(0, 3))]));
    });
    servers.push(s);
    const partial = await get(s.port);
    await partial.read(100);
    const rest = partial.read(900);
    partial.close();
    await expect(rest).rejects.toThrow();
    const closing = await get(s.port);
    await readAll(closing, 100);
    closing.close();
    const overrun = await get(s.port);
    await readAll(overrun, 100);
    overrun.close();
    const last = await get(s.port);
    expect((await readAll(last, 100)).toString()).toBe('GET');
    last.close();
    expect(s.requests).toHaveLength(4);
    expect(s.connections()).toBe(4);
  });

  it('a kept connection the peer has closed is replaced: the GET goes out again on a new one', async () => {
    const s = await fake((sock) => {
      const n = s.requests.length;
      if (n === 2) {
        // the peer drops the kept connection as the next request arrives
        sock.destroy();
        return;
      }
      sock.write(Buffer.concat([Buffer.from(head200(4)), Buffer.from(`r${n}..`)]));
    });
    servers.push(s);
    const first = await get(s.port);
    expect((await readAll(first, 100)).toString()).toBe('r1..');
    first.close();
    const second = await get(s.port);
    expect((await readAll(second, 100)).toString()).toBe('r3..');
    second.close();
    expect(s.requests).toHaveLength(3);
    expect(s.connections()).toBe(2);

    // and one closed while idle is not taken at all
    const idle = await fake(answerWith([Buffer.from('a'), Buffer.from('b')]));
    servers.push(idle);
    const a = await get(idle.port);
    await readAll(a, 10);
    a.close();
    await idle.close();
    servers.pop();
    const again = await fake(answerWith([Buffer.from('c')]));
    servers.push(again);
    // a new server on another port; the old port's kept connection was dropped when it hung up
    const c = await get(again.port);
    expect((await readAll(c, 10)).toString()).toBe('c');
    c.close();
  });
});

describe('the local archive', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fragmend-local-archive-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the file in fragment-sized pieces into one buffer, then nothing', async () => {
    const body = randomBytes(3 * 1000 + 17);
    const path = join(dir, 'a.data');
    writeFileSync(path, body);
    const r = await LocalArchive.open(path);
    const first = await r.read(1000);
    const firstBuffer = first.buffer;
    expect(Buffer.from(first)).toEqual(body.subarray(0, 1000));
    const rest = await readAll(r, 1000);
    expect(rest).toEqual(body.subarray(1000));
    expect((await r.read(1000)).length).toBe(0);
    expect(first.buffer).toBe(firstBuffer);
    r.close();
    await expect(r.read(1)).rejects.toThrow(/closed/);
  });

  it('a missing file fails to open', async () => {
    await expect(LocalArchive.open(join(dir, 'nope.data'))).rejects.toThrow(/ENOENT/);
  });
});
