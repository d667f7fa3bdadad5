// The batched REPLICATE between fragmend nodes: the request header a server reads, the framed
// answer a client reads (and refuses when malformed), and the reconstructor's book of answers
// given ahead. A real Swift object server ignoring the header, and fragmend's answering it
// byte for byte as single REPLICATEs, are in test/server/object-server.test.ts; a pass using
// it, in test/reconstructor/pass.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { HashesAhead } from '../../src/reconstructor/ahead.js';
import { fake, type Fake } from '../helpers/fake-peer.js';
import { PeerPools } from '../../src/replication/peers.js';
import { parseReplicateBatch, replicate, REPLICATE_BATCH_MAX, replicateBatchParts, ReplicateBatchError } from '../../src/replication/replicate.js';
import { replicatePickle, type SuffixHashes } from '../../src/swift/hashes.js';

const hashes = (entries: Record<string, Record<string, string> | null>): Map<string, SuffixHashes | null> =>
  new Map(Object.entries(entries).map(([s, h]) => [s, h ? new Map(Object.entries(h).map(([k, v]) => [k === 'None' ? null : Number(k), v])) : null]));
const piece = (part: number, h: Map<string, SuffixHashes | null>) => {
  const body = Buffer.from(replicatePickle(h));
  return Buffer.concat([Buffer.from(`${part} ${body.length}\n`), body]);
};
const A = hashes({ abc: { None: 'd41d8cd98f00b204e9800998ecf8427e', '2': '0123456789abcdef0123456789abcdef' } });
const B = hashes({ fff: { '3': 'fedcba9876543210fedcba9876543210' }, '00a': null });
const EMPTY = hashes({});

describe('replicateBatchParts (what a server answers for)', () => {
  it("takes the path's partition first, then the header's, each once", () => {
    expect(replicateBatchParts('7', '12, 7,3,12,0')).toEqual(['7', '12', '3', '0']);
  });
  it('skips entries that are not plain partition numbers', () => {
    expect(replicateBatchParts('7', '1x,-2,..,007,3/4,,  ,99999999999,5')).toEqual(['7', '5']);
  });
  it("answers as Swift does (no batch) when the path's partition is not a plain number", () => {
    expect(replicateBatchParts('07', '1,2')).toBeNull();
    expect(replicateBatchParts('x', '1,2')).toBeNull();
  });
  it(`stops at ${REPLICATE_BATCH_MAX} partitions`, () => {
    const many = [...Array(1000).keys()].map((i) => i + 1).join(',');
    const parts = replicateBatchParts('0', many)!;
    expect(parts.length).toBe(REPLICATE_BATCH_MAX);
    expect(parts.at(-1)).toBe(String(REPLICATE_BATCH_MAX - 1));
  });
});

describe('parseReplicateBatch (what a client reads)', () => {
  it('reads every piece, by partition', () => {
    const got = parseReplicateBatch(Buffer.concat([piece(7, A), piece(12, B), piece(3, EMPTY)]), 'peer');
    expect([...got.keys()]).toEqual([7, 12, 3]);
    expect(got.get(7)).toEqual(A);
    expect(got.get(12)).toEqual(B);
    expect(got.get(3)!.size).toBe(0);
  });
  it('refuses a piece cut short, a bad piece line, a bad pickle, and trailing junk', () => {
    const whole = Buffer.concat([piece(7, A), piece(12, B)]);
    for (const bad of [
      whole.subarray(0, whole.length - 3),
      Buffer.concat([Buffer.from('7 -1\n'), whole]),
      Buffer.concat([Buffer.from('seven 3\nabc')]),
      Buffer.concat([Buffer.from('7 3\nabc')]),
      Buffer.concat([whole, Buffer.from('x')]),
      Buffer.from('7 '.padEnd(100, '1') + '\n'),
    ]) {
      expect(() => parseReplicateBatch(bad, 'peer')).toThrow(ReplicateBatchError);
    }
  });
});

describe('replicate() with more partitions', () => {
  const servers: Fake[] = [];
  const pools: PeerPools[] = [];
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.close(100);
    for (const f of servers.splice(0)) await f.close();
  });
  /** a peer that answers each request with answer(request head); its request heads in `requests` */
  async function peer(answer: (head: string) => string | Buffer): Promise<Fake> {
    const f = await fake((sock, head) => sock.write(answer(head)));
    servers.push(f);
    return f;
  }
  const reply = (body: Buffer, extra = '') => Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n`), body]);
  const node = (port: number) => ({ replication_ip: '127.0.0.1', replication_port: port, device: 'sdb' });
  const newPools = () => {
    const p = new PeerPools({ connTimeout: 1, responseTimeout: 2 });
    pools.push(p);
    return p;
  };

  it('asks with the header and reads a batched answer', async () => {
    const p = await peer(() => reply(Buffer.concat([piece(7, A), piece(12, B)]), 'X-Fragmend-Replicate-Batch: 2\r\n'));
    const r = await replicate(newPools(), node(p.port), 7, 1, 'test', [12]);
    expect(p.requests[0]).toMatch(/^REPLICATE \/sdb\/7 HTTP\/1.1\r\n/);
    expect(p.requests[0]).toMatch(/\r\nX-Fragmend-Replicate-Batch: 12(\r\n|$)/);
    expect(r.status).toBe(200);
    expect(r.hashes).toEqual(A);
    expect(r.batch?.get(12)).toEqual(B);
  });

  it("takes a plain answer (a Swift peer's) as the path partition's alone", async () => {
    const p = await peer(() => reply(Buffer.from(replicatePickle(A))));
    const r = await replicate(newPools(), node(p.port), 7, 1, 'test', [12, 13]);
    expect(r.hashes).toEqual(A);
    expect(r.batch).toBeUndefined();
  });

  it('refuses a batched answer without the partition asked for', async () => {
    const p = await peer(() => reply(piece(12, B), 'X-Fragmend-Replicate-Batch: 1\r\n'));
    const e = await replicate(newPools(), node(p.port), 7, 1, 'test', [12]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ReplicateBatchError);
    expect((e as Error).message).toMatch(/without the partition asked for/);
  });

  it('sends no header when there is nothing more to ask for', async () => {
    const p = await peer(() => reply(Buffer.from(replicatePickle(A))));
    await replicate(newPools(), node(p.port), 7, 1, 'test', []);
    expect(p.requests[0]).not.toMatch(/X-Fragmend/i);
  });
});

describe('HashesAhead', () => {
  const n1 = { replication_ip: '127.0.0.1', replication_port: 6200, device: 'sdb' };
  const n1c = { replication_ip: '127.0.0.1', replication_port: 6200, device: 'sdc' };
  const swift = { replication_ip: '127.0.0.2', replication_port: 6200, device: 'sdb' };

  it('keeps a batch by device and policy, without the asking job’s own partition; each answer is used once', async () => {
    const a = new HashesAhead();
    expect(a.canBatch(n1, 1)).toBe(true);
    a.startBatch(n1, 1, [12]);
    a.endBatch(n1, 1, 7, new Map([[7, A], [12, B]]));
    expect(await a.given(n1, 1, 7)).toBeUndefined();
    expect(await a.given(n1, 2, 12)).toBeUndefined();
    expect(await a.given(n1c, 1, 12)).toBeUndefined();
    expect(await a.given(n1, 1, 12)).toEqual(B);
    expect(await a.given(n1, 1, 12)).toBeUndefined();
  });

  it('lets one batch at a time go to a device; a job whose partition it asked for waits for it', async () => {
    const a = new HashesAhead();
    a.startBatch(n1, 1, [12, 13]);
    expect(a.canBatch(n1, 1)).toBe(false);
    expect(a.canBatch(n1c, 1)).toBe(true);
    // a partition the batch did not ask for, or another device's, is not waited for
    expect(await a.given(n1, 1, 14)).toBeUndefined();
    expect(await a.given(n1c, 1, 12)).toBeUndefined();
    let got: unknown = 'not yet';
    const wait = a.given(n1, 1, 12).then((h) => (got = h));
    await new Promise((r) => setTimeout(r, 10));
    expect(got).toBe('not yet');
    a.endBatch(n1, 1, 7, new Map([[7, A], [12, B], [13, A]]));
    await wait;
    expect(got).toEqual(B);
    expect(a.canBatch(n1, 1)).toBe(true);
  });

  it('asks a peer that answered plainly no more in this pass, and again after reset', () => {
    const a = new HashesAhead();
    a.startBatch(swift, 1, [12]);
    a.endBatch(swift, 1, 7, 'plain');
    expect(a.canBatch(swift, 1)).toBe(false);
    expect(a.canBatch({ ...swift, device: 'sdc' }, 1)).toBe(false);
    a.reset();
    expect(a.canBatch(swift, 1)).toBe(true);
  });

  it('a failed batch marks nothing, and lets its waiters go', async () => {
    const a = new HashesAhead();
    a.startBatch(n1, 1, [12]);
    const wait = a.given(n1, 1, 12);
    a.endBatch(n1, 1, 7, null);
    expect(await wait).toBeUndefined();
    expect(await a.given(n1, 1, 12)).toBeUndefined();
    expect(a.canBatch(n1, 1)).toBe(true);
  });

  it('a reset lets the waiters of a batch still on its way go', async () => {
    const a = new HashesAhead();
    a.startBatch(n1, 1, [12]);
    const wait = a.given(n1, 1, 12);
    a.reset();
    expect(await wait).toBeUndefined();
    expect(a.canBatch(n1, 1)).toBe(true);
  });

  it('asks for no batch while the answers held name too many suffixes', async () => {
    const a = new HashesAhead(60_000, Date.now, 3);
    a.startBatch(n1, 1, [12, 13]);
    a.endBatch(n1, 1, 7, new Map([[12, B], [13, A]]));
    // B names two suffixes, A one: three held
    expect(a.canBatch(n1c, 1)).toBe(false);
    expect(await a.given(n1, 1, 13)).toEqual(A);
    expect(a.canBatch(n1c, 1)).toBe(true);
    a.startBatch(n1c, 1, [12]);
    a.endBatch(n1c, 1, 7, new Map([[12, B]]));
    expect(a.canBatch(n1, 1)).toBe(false);
    a.reset();
    expect(a.canBatch(n1, 1)).toBe(true);
  });

  it('makes room by forgetting the answers too old to be used', async () => {
    let now = 1000;
    const a = new HashesAhead(60_000, () => now, 3);
    a.startBatch(n1, 1, [12, 13]);
    a.endBatch(n1, 1, 7, new Map([[12, B], [13, A]]));
    expect(a.canBatch(n1c, 1)).toBe(false);
    now += 60_001;
    expect(a.canBatch(n1c, 1)).toBe(true);
    expect(await a.given(n1, 1, 12)).toBeUndefined();
    // what is held since counts from nothing
    a.startBatch(n1c, 1, [12]);
    a.endBatch(n1c, 1, 7, new Map([[12, B]]));
    expect(a.canBatch(n1, 1)).toBe(true);
    expect(await a.given(n1c, 1, 12)).toEqual(B);
  });

  it('does not use an answer older than its age limit', async () => {
    let now = 1000;
    const a = new HashesAhead(60_000, () => now);
    a.startBatch(n1, 1, [12, 13]);
    a.endBatch(n1, 1, 7, new Map([[12, B], [13, A]]));
    now += 60_000;
    expect(await a.given(n1, 1, 12)).toEqual(B);
    now += 1;
    expect(await a.given(n1, 1, 13)).toBeUndefined();
  });
});
