// The HTTP side of fragmend's object server on its own (no Swift needed): large bodies stream
// both ways, 100-continue, keep-alive, and clients that vanish mid-body leave nothing behind.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import type { ObjectServer } from '../../src/server/object-server.js';
import { makeSandbox, request, startOurServer, type LogCapture, type Sandbox } from './harness.js';

const P1 = { 'X-Backend-Storage-Policy-Index': '1' };
/** One fragment of a 1 MiB segment of the 4+2 policy, header included (its fragment_size). */
const FRAG = 262_224;

/**
 * An archive the server will serve whole: `count` fragments, each a real fragment header (a GET
 * checks every header, as Swift's does) before a payload of its own, from `seed`.
 */
function archive(header: Uint8Array, count: number, seed: number): Buffer {
  const b = Buffer.alloc(count * FRAG);
  for (let f = 0; f < count; f++) {
    b.set(header, f * FRAG);
    for (let i = f * FRAG + 80; i + 4 <= (f + 1) * FRAG; i += 4) b.writeUInt32LE(((i + 1) * (2654435761 + seed * 40503)) >>> 0, i);
  }
  return b;
}

describe('object server HTTP: streaming and broken clients', () => {
  let sbx: Sandbox;
  let ours: { server: ObjectServer; port: number; logs: LogCapture };
  const base = Math.floor(Date.now() / 1000) - 100;
  const T = (i: number) => `${base + i}.00000`;
  const putHeaders = (ts: string, len: number) => ({ ...P1, 'X-Timestamp': ts, 'Content-Type': 'application/octet-stream', 'X-Object-Sysmeta-Ec-Frag-Index': '0', 'Content-Length': String(len) });

  let header: Uint8Array;

  beforeAll(async () => {
    const ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
    header = ec.encode(new Uint8Array(1 << 20))[0]!.subarray(0, 80);
    sbx = makeSandbox('streaming');
    ours = await startOurServer(sbx, sbx.devices('ours'));
  });
  afterAll(async () => {
    await ours?.server.stop();
    sbx?.cleanup();
  });

  const tmpFiles = () => {
    const d = join(ours.server.options.devices, 'sdb', 'tmp-1');
    return existsSync(d) ? readdirSync(d) : [];
  };

  it('a 24 MiB archive goes in and comes back out intact', async () => {
    const body = archive(header, 96, 0); // 24 MiB
    const put = await request(ours.port, 'PUT', '/sdb/1/a/c/big', putHeaders(T(1), body.length), body);
    expect(put.status).toBe(201);
    expect(put.header('Etag')).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    const get = await request(ours.port, 'GET', '/sdb/1/a/c/big', P1);
    expect(get.status).toBe(200);
    expect(get.body.length).toBe(body.length);
    expect(createHash('md5').update(get.body).digest('hex')).toBe(createHash('md5').update(body).digest('hex'));
  });

  it("'Expect: 100-continue' is answered before the body is read, and a refused PUT never gets one", async () => {
    const exchange = (ts: string) =>
      new Promise<string>((resolve) => {
        const s = connect(ours.port, '127.0.0.1', () =>
          s.write(`PUT /sdb/1/a/c/cont HTTP/1.1\r\n${Object.entries({ ...putHeaders(ts, 5), Expect: '100-continue' }).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`),
        );
        let out = '';
        s.on('data', (d: Buffer) => {
          out += d.toString('latin1');
          if (out.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && !out.includes('201')) s.write('hello');
          if (/HTTP\/1\.1 (201|409)/.test(out)) s.end();
        });
        s.on('close', () => resolve(out));
      });
    const first = await exchange(T(2));
    expect(first).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 Created\r\n/);
    const again = await exchange(T(2));
    expect(again).toMatch(/^HTTP\/1\.1 409 Conflict\r\n/);
    expect(again).toMatch(/X-Backend-Timestamp: /);
  });

  it('a client that disconnects in the middle of a PUT leaves no file; one that disconnects mid-GET does no harm', async () => {
    await new Promise<void>((resolve) => {
      const s = connect(ours.port, '127.0.0.1', () => {
        s.write(`PUT /sdb/1/a/c/torn HTTP/1.1\r\n${Object.entries(putHeaders(T(3), 1 << 20)).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
        s.write(Buffer.alloc(300_000, 1), () => setTimeout(() => s.destroy(), 50));
      });
      s.on('close', () => resolve());
    });
    await ours.logs.waitFor(/"PUT \/sdb\/1\/a\/c\/torn" 499/);
    expect(tmpFiles()).toEqual([]);
    expect((await request(ours.port, 'GET', '/sdb/1/a/c/torn', P1)).status).toBe(404);

    await new Promise<void>((resolve) => {
      const s = connect(ours.port, '127.0.0.1', () => s.write(`GET /sdb/1/a/c/big HTTP/1.1\r\nX-Backend-Storage-Policy-Index: 1\r\n\r\n`));
      let n = 0;
      s.on('data', (d: Buffer) => {
        n += d.length;
        if (n > 1 << 20) s.destroy();
      });
      s.on('close', () => resolve());
    });
    expect((await request(ours.port, 'HEAD', '/sdb/1/a/c/big', P1)).status).toBe(200);
  });

  it('GETs at once, fast, slow and abandoned, each get their own bytes from the reused read buffers', async () => {
    const bodies = [0, 1, 2, 3, 4, 5].map((k) => archive(header, 24 + k, k + 1));
    for (const [k, b] of bodies.entries()) expect((await request(ours.port, 'PUT', `/sdb/1/a/c/many${k}`, putHeaders(T(10 + k), b.length), b)).status).toBe(201);
    /** A raw GET read at its own pace; a vanishing one leaves after 1 MiB. */
    const rawGet = (k: number, pauseMs: number, vanish = false) =>
      new Promise<Buffer>((resolve) => {
        const s = connect(ours.port, '127.0.0.1', () => s.write(`GET /sdb/1/a/c/many${k} HTTP/1.1\r\nX-Backend-Storage-Policy-Index: 1\r\nConnection: close\r\n\r\n`));
        const parts: Buffer[] = [];
        let n = 0;
        let events = 0;
        s.on('data', (d: Buffer) => {
          parts.push(d);
          n += d.length;
          if (vanish && n > 1 << 20) s.destroy();
          else if (pauseMs && events++ < 40) {
            // slow enough that the server's sends queue up behind the socket
            s.pause();
            setTimeout(() => s.resume(), pauseMs);
          }
        });
        s.on('close', () => {
          const all = Buffer.concat(parts);
          resolve(all.subarray(all.indexOf('\r\n\r\n') + 4));
        });
      });
    for (let round = 0; round < 2; round++) {
      const got = await Promise.all([rawGet(0, 0), rawGet(1, 20), rawGet(2, 0, true), rawGet(3, 10), rawGet(4, 0), rawGet(5, 30, true), rawGet(1, 0)]);
      for (const [i, k] of [0, 1, 3, 4, 1].entries()) {
        const body = got[[0, 1, 3, 4, 6][i]!]!;
        expect(body.length).toBe(bodies[k]!.length);
        expect(Buffer.compare(body, bodies[k]!)).toBe(0);
      }
    }
    // a client that reads nothing of a 24 MiB archive, then goes away: the send it blocked fails
    await new Promise<void>((resolve) => {
      const c = connect(ours.port, '127.0.0.1', () => c.write('GET /sdb/1/a/c/big HTTP/1.1\r\nX-Backend-Storage-Policy-Index: 1\r\n\r\n'));
      c.pause();
      setTimeout(() => c.destroy(), 300);
      c.on('close', () => resolve());
    });
    // every GET let go of its file, the abandoned ones too
    await new Promise((r) => setTimeout(r, 200));
    const open = readdirSync('/proc/self/fd').map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    });
    expect(open.filter((l) => l.startsWith(ours.server.options.devices) && l.endsWith('.data'))).toEqual([]);
  });

  it('keeps a connection alive across requests', async () => {
    const out = await new Promise<string>((resolve) => {
      const s = connect(ours.port, '127.0.0.1', () => {
        s.write('HEAD /sdb/1/a/c/big HTTP/1.1\r\nX-Backend-Storage-Policy-Index: 1\r\n\r\n');
        setTimeout(() => s.write('REPLICATE /sdb/1 HTTP/1.1\r\nX-Backend-Storage-Policy-Index: 1\r\nConnection: close\r\n\r\n'), 100);
      });
      let o = '';
      s.on('data', (d: Buffer) => (o += d.toString('latin1')));
      s.on('close', () => resolve(o));
    });
    expect(out.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
  });

  it('a body that breaks the chunked framing is a 499 and nothing is written', async () => {
    const out = await new Promise<string>((resolve) => {
      const s = connect(ours.port, '127.0.0.1', () => {
        const h = { ...putHeaders(T(4), 0), 'Transfer-Encoding': 'chunked' } as Record<string, string>;
        delete h['Content-Length'];
        s.write(`PUT /sdb/1/a/c/badchunk HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n5\r\nhello\r\nzz\r\n`);
      });
      let o = '';
      s.on('data', (d: Buffer) => (o += d.toString('latin1')));
      s.on('close', () => resolve(o));
    });
    expect(out).toMatch(/^HTTP\/1\.1 499 Client Disconnect\r\n/);
    expect(tmpFiles()).toEqual([]);
    expect((await request(ours.port, 'GET', '/sdb/1/a/c/badchunk', P1)).status).toBe(404);
  });
});
