// Whole-answer exchanges (REPLICATE) over kept connections: reuse, a peer that hangs up a kept
// connection, answers that must not be reused or cannot be trusted, and Swift's timeouts. The
// peers here are plain sockets that answer with exactly the bytes a test wants; the exchange
// with real Swift object servers is in the reconstructor's suites.
import { afterEach, describe, expect, it } from 'vitest';
import { PeerPools, PeerProtocolError, PeerTimeout } from '../../src/replication/peers.js';
import { fake, type Fake } from '../helpers/fake-peer.js';

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

const servers: Fake[] = [];
const pools: PeerPools[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close(100);
  for (const s of servers.splice(0)) await s.close();
});
const newPools = (responseTimeout = 2) => {
  const p = new PeerPools({ connTimeout: 1, responseTimeout });
  pools.push(p);
  return p;
};
const replicate = (p: PeerPools, port: number) =>
  p.exchange('127.0.0.1', port, { method: 'REPLICATE', path: '/sda/12', headers: { 'Content-Length': '0', 'X-Backend-Storage-Policy-Index': '1' } });

describe('exchanges over kept connections', () => {
  it('sends the request as Swift does and reads the whole answer; the connection is kept and reused', async () => {
    const s = await fake((sock, _req, n) => sock.write(ok(`answer ${n}`, 'X-Thing: a\r\nx-thing: b\r\n')));
    servers.push(s);
    const p = newPools();
    for (let i = 1; i <= 5; i++) {
      const a = await replicate(p, s.port);
      expect(a.statusCode).toBe(200);
      expect(a.body.toString()).toBe(`answer ${i}`);
      expect(a.headers['x-thing']).toBe('a, b');
    }
    expect(s.connections).toBe(1);
    expect(s.requests[0]).toBe(`REPLICATE /sda/12 HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nContent-Length: 0\r\nX-Backend-Storage-Policy-Index: 1`);
  });

  it('answers arriving in pieces, and a body of many pieces, are put together', async () => {
    const body = 'x'.repeat(200_000);
    const s = await fake((sock) => {
      const all = Buffer.from(ok(body));
      let at = 0;
      const step = () => {
        if (at >= all.length) return;
        sock.write(all.subarray(at, at + 7_000));
        at += 7_000;
        setTimeout(step, 1);
      };
      step();
    });
    servers.push(s);
    const a = await replicate(newPools(), s.port);
    expect(a.body.toString()).toBe(body);
  });

  it('a connection out of step is not reused: bytes past the body, or bytes while it is idle', async () => {
    // answer 1 carries a stray byte after its body; answer 2 is followed, later, by unasked bytes
    const s = await fake((sock, _req, n) => {
      if (n === 1) sock.write(ok('one') + '!');
      else {
        sock.write(ok(`answer ${n}`));
        if (n === 2) setTimeout(() => sock.write('HTTP/1.1 200 OK\r\n'), 20);
      }
    });
    servers.push(s);
    const p = newPools();
    expect((await replicate(p, s.port)).body.toString()).toBe('one');
    expect((await replicate(p, s.port)).body.toString()).toBe('answer 2');
    expect(s.connections).toBe(2);
    await new Promise((r) => setTimeout(r, 60));
    // the unasked bytes were not taken for answer 3's
    expect((await replicate(p, s.port)).body.toString()).toBe('answer 3');
    expect(s.connections).toBe(3);
  });

  it('answers of many peers at once each get their own bytes', async () => {
    const peers = await Promise.all([0, 1, 2, 3].map((i) => fake((sock, _req, n) => sock.write(ok(`${i}:${n}:` + String(i).repeat(100_000 + i))))));
    servers.push(...peers);
    const p = newPools();
    for (let round = 1; round <= 3; round++) {
      const answers = await Promise.all(peers.map((f) => replicate(p, f.port)));
      answers.forEach((a, i) => expect(a.body.toString()).toBe(`${i}:${round}:` + String(i).repeat(100_000 + i)));
    }
  });

  it('parallel exchanges with one peer use connections of their own', async () => {
    const s = await fake((sock, _req, n) => setTimeout(() => sock.write(ok(String(n))), 20));
    servers.push(s);
    const p = newPools();
    const answers = await Promise.all([1, 2, 3].map(() => replicate(p, s.port)));
    expect(answers.map((a) => a.body.toString()).sort()).toEqual(['1', '2', '3']);
    expect(s.connections).toBe(3);
    await Promise.all([1, 2, 3].map(() => replicate(p, s.port)));
    expect(s.connections).toBe(3);
  });

  it('a kept connection the peer hung up is replaced without the caller seeing it', async () => {
    const s = await fake((sock) => sock.write(ok('fine')));
    servers.push(s);
    const p = newPools();
    await replicate(p, s.port);
    for (const sock of s.sockets) sock.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect((await replicate(p, s.port)).body.toString()).toBe('fine');
    expect(s.connections).toBe(2);
  });

  it('a peer that hangs up on our request after keeping it gets one more try, on a fresh connection', async () => {
    // the first request on the second connection is answered; the second connection's is dropped
    const s = await fake((sock, _req, n) => (n === 2 ? sock.destroy() : sock.write(ok(`n${n}`))));
    servers.push(s);
    const p = newPools();
    expect((await replicate(p, s.port)).body.toString()).toBe('n1');
    expect((await replicate(p, s.port)).body.toString()).toBe('n3');
    expect(s.connections).toBe(2);
  });

  it('Connection: close and HTTP/1.0 answers are not reused; an answer without a length is read to the end', async () => {
    const s = await fake((sock, _req, n) => {
      if (n === 1) sock.write(ok('one', 'Connection: close\r\n'));
      else if (n === 2) sock.write('HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\ntwo');
      else sock.end('HTTP/1.1 200 OK\r\n\r\nthree, to the end');
    });
    servers.push(s);
    const p = newPools();
    expect((await replicate(p, s.port)).body.toString()).toBe('one');
    expect((await replicate(p, s.port)).body.toString()).toBe('two');
    expect((await replicate(p, s.port)).body.toString()).toBe('three, to the end');
    expect(s.connections).toBe(3);
  });

  it('error statuses come back as answers', async () => {
    const s = await fake((sock) => sock.write('HTTP/1.1 507 Insufficient Storage\r\nContent-Length: 3\r\n\r\nno!'));
    servers.push(s);
    const a = await replicate(newPools(), s.port);
    expect(a.statusCode).toBe(507);
    expect(a.body.toString()).toBe('no!');
  });

  it('garbage, chunked answers, bodies cut short and bodies over the limit are typed errors', async () => {
    const cases: Array<[string, RegExp]> = [
      ['SSH-2.0-OpenSSH_9.2\r\n\r\n', /bad status line/],
      ['HTTP/1.1 200 OK\r\nbroken header\r\n\r\n', /bad header line/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', /chunked/],
      ['HTTP/1.1 200 OK\r\nContent-Length: nine\r\n\r\n', /bad Content-Length/],
    ];
    for (const [answer, why] of cases) {
      const s = await fake((sock) => sock.write(answer));
      servers.push(s);
      const e = await replicate(newPools(), s.port).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(PeerProtocolError);
      expect(String(e)).toMatch(why);
    }
    const short = await fake((sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this'));
    servers.push(short);
    await expect(replicate(newPools(), short.port)).rejects.toThrow(/91 bytes short/);
    const big = await fake((sock) => sock.write(ok('x'.repeat(5000))));
    servers.push(big);
    await expect(newPools().exchange('127.0.0.1', big.port, { method: 'GET', path: '/', limit: 1000 })).rejects.toThrow(/over 1000/);
  });

  it('a peer that never answers times out; one that is gone is refused; bad header values are not sent', async () => {
    const mute = await fake(() => undefined);
    servers.push(mute);
    const t0 = Date.now();
    await expect(replicate(newPools(0.3), mute.port)).rejects.toBeInstanceOf(PeerTimeout);
    expect(Date.now() - t0).toBeLessThan(2000);
    const gone = await fake(() => undefined);
    await gone.close();
    await expect(replicate(newPools(), gone.port)).rejects.toThrow(/ECONNREFUSED/);
    await expect(newPools().exchange('127.0.0.1', 1, { method: 'GET', path: '/', headers: { 'X-A': 'b\r\nX-Injected: 1' } })).rejects.toThrow(/cannot be sent/);
  });

  it('an idle kept connection does not keep the process alive, and close() ends everything', async () => {
    const s = await fake((sock) => sock.write(ok('x')));
    servers.push(s);
    const p = new PeerPools({ connTimeout: 1, responseTimeout: 2 });
    await replicate(p, s.port);
    expect(s.sockets.size).toBe(1);
    await p.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(s.sockets.size).toBe(0);
    await expect(replicate(p, s.port)).rejects.toThrow(/closed/);
  });
});
