// How the rebuild gathers its k fragments: the local archive from disk, and only as many peers
// at a time as could still complete the set, plus one when a source needs checking (a peer that
// does not say it checked its archive), whose fragment the others must rebuild to the byte.
// Peers here are plain node:http servers serving archives this codec made, so every GET can be
// counted; real Swift peers are in rebuild.test.ts and the reconstructor's suites.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { HeldLog, rebuildFragmentArchive, RebuildFailed, type FragmentNode } from '../../src/replication/fragment-fetcher.js';
import type { StoragePolicy } from '../../src/swift/policies.js';

const K = 4;
const M = 2;
const SEGMENT = 65_536;
const TS = '1700000000.12345';
const ETAG = 'd41d8cd98f00b204e9800998ecf8427e';

describe('gathering fragments for a rebuild', () => {
  let ec: ECDriver;
  let archives: Buffer[];
  let dir: string;
  let localPath: string;
  const servers: http.Server[] = [];
  const gets: number[] = [];
  /** what each peer answers: its archive (200), or a status */
  const behaviour: Array<'ok' | 404 | 'hang' | 'cut' | 'rot'> = [];
  /** the peers say their server checked the archive (as fragmend's object server does) */
  let serverChecks = false;
  const nodes: FragmentNode[] = [];
  let policy: StoragePolicy;
  const object = randomBytes(5 * SEGMENT + 1234);

  beforeAll(async () => {
    ec = await ECDriver.create({ k: K, m: M, ecType: 'liberasurecode_rs_vand' });
    const parts: Buffer[][] = Array.from({ length: K + M }, () => []);
    for (let at = 0; at < object.length; at += SEGMENT) {
      ec.encode(object.subarray(at, at + SEGMENT)).forEach((f, i) => parts[i]!.push(Buffer.from(f)));
    }
    archives = parts.map((p) => Buffer.concat(p));
    const fragmentSize = ec.encode(object.subarray(0, SEGMENT))[0]!.length;
    policy = {
      index: 1,
      name: 'ec',
      aliases: ['ec'],
      isDefault: false,
      isDeprecated: false,
      policyType: 'erasure_coding',
      diskfileModule: 'egg:swift#erasure_coding.fs',
      ringName: 'object-1',
      ec: { ecType: 'liberasurecode_rs_vand', supported: true, ndata: K, nparity: M, segmentSize: SEGMENT, duplicationFactor: 1, nUniqueFragments: K + M, fragmentSize },
    };
    dir = mkdtempSync(join(tmpdir(), 'fragmend-fetcher-'));
    localPath = join(dir, `${TS}#0#d.data`);
    writeFileSync(localPath, archives[0]!);
    // peers hold indexes 1..4; index 5 is the one lost
    for (let fi = 1; fi <= 4; fi++) {
      const slot = nodes.length;
      gets.push(0);
      behaviour.push('ok');
      const server = http.createServer((req, res) => {
        gets[slot]!++;
        const how = behaviour[slot];
        if (how === 'hang') return;
        if (how === 404) return void res.writeHead(404, { 'Content-Length': '0', 'X-Backend-Timestamp': TS }).end();
        const body = how === 'rot' ? rotten(archives[fi]!) : archives[fi]!;
        res.writeHead(200, {
          ...(serverChecks ? { 'X-Backend-Archive-Checked': 'etag' } : {}),
          'Content-Length': String(body.length),
          'X-Object-Sysmeta-Ec-Frag-Index': String(fi),
          'X-Object-Sysmeta-Ec-Etag': ETAG,
          'X-Backend-Data-Timestamp': TS,
          'X-Backend-Durable-Timestamp': TS,
        });
        if (how === 'cut') {
          res.flushHeaders();
          res.socket!.end(body.subarray(0, 1000));
        }
        else res.end(body);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      servers.push(server);
      nodes.push({ id: slot + 10, replication_ip: '127.0.0.1', replication_port: (server.address() as { port: number }).port, device: `d${fi}`, index: fi });
    }
  });
  afterAll(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** a copy with one payload byte of the third segment's fragment flipped (its header stays good) */
  const rotten = (a: Buffer) => {
    const b = Buffer.from(a);
    const frag = policy.ec!.fragmentSize;
    b[2 * frag + 80 + 777]! ^= 0x5a;
    return b;
  };
  const reset = (...how: Array<'ok' | 404 | 'hang' | 'cut' | 'rot'>) => {
    serverChecks = false;
    for (let i = 0; i < gets.length; i++) {
      gets[i] = 0;
      behaviour[i] = how[i] ?? 'ok';
    }
  };
  const totalGets = () => gets.reduce((a, b) => a + b, 0);
  const request = (local: boolean) => ({
    policy,
    ec,
    partition: 7,
    name: '/a/c/o',
    localMetadata: {
      'X-Timestamp': TS,
      'Content-Length': String(archives[0]!.length),
      'X-Object-Sysmeta-Ec-Frag-Index': '0',
      'X-Object-Sysmeta-Ec-Etag': ETAG,
      name: '/a/c/o',
    },
    targetIndex: 5,
    nodes,
    ...(local ? { local: { path: localPath, durable: true } } : {}),
    connTimeout: 1,
    nodeTimeout: 1,
  });
  const drain = async (body: AsyncIterable<Uint8Array>) => {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(Buffer.from(c));
    return Buffer.concat(parts);
  };

  it('peers that check their archives: with the local archive, k-1 are asked and the lost archive is rebuilt byte-identical', async () => {
    reset();
    serverChecks = true;
    // the first rebuild learns that these peers check theirs; then no fragment more is read
    expect(await drain((await rebuildFragmentArchive(request(true))).body)).toEqual(archives[5]);
    gets.fill(0);
    const src = await rebuildFragmentArchive(request(true));
    expect(await drain(src.body)).toEqual(archives[5]);
    expect(totalGets()).toBe(K - 1);
    expect(src.check).toBe('server');
    expect(src.metadata['X-Object-Sysmeta-Ec-Frag-Index']).toBe('5');
    gets.fill(0);
    expect(await drain((await rebuildFragmentArchive(request(false))).body)).toEqual(archives[5]);
    expect(totalGets()).toBe(K);
  });

  it('peers that do not: one fragment more is read (k peers with the local archive; all four without)', async () => {
    reset();
    const src = await rebuildFragmentArchive(request(true));
    expect(await drain(src.body)).toEqual(archives[5]);
    expect(totalGets()).toBe(K);
    expect(src.check).toBe('fragmentMore');
    reset();
    // without the local archive the four peers are only k: each is checked by its ETag instead
    const four = await rebuildFragmentArchive(request(false));
    expect(await drain(four.body)).toEqual(archives[5]);
    expect(totalGets()).toBe(4);
    expect(four.check).toBe('etag');
  });

  it("a peer's rotten archive (payload rot under good headers) ends the rebuilt archive at the segment it spoils, wherever it is in the set", async () => {
    const frag = policy.ec!.fragmentSize;
    for (let bad = 0; bad < 4; bad++) {
      reset(...[0, 1, 2, 3].map((i) => (i === bad ? ('rot' as const) : ('ok' as const))));
      const lines: string[] = [];
      const causes: string[] = [];
      const src = await rebuildFragmentArchive({
        ...request(true),
        logger: { warn: (m) => lines.push(m), error: (m) => lines.push(m) },
        onSourceFailure: (cause) => causes.push(cause),
      });
      const got = await drain(src.body);
      // the two good segments before it, and nothing of the spoilt one
      expect(got).toEqual(archives[5]!.subarray(0, 2 * frag));
      expect(lines.join('\n')).toMatch(/sources do not agree in segment 2 .*one of the archives is rotten/);
      expect(causes).toEqual(['rotten']);
    }
    // a rotten local archive shows the same way
    const rottenLocal = join(dir, `${TS}#0#d.rotten.data`);
    writeFileSync(rottenLocal, rotten(archives[0]!));
    reset();
    const src = await rebuildFragmentArchive({ ...request(true), local: { path: rottenLocal, durable: true } });
    expect(await drain(src.body)).toEqual(archives[5]!.subarray(0, 2 * frag));
  });

  it('with the check off (check_peer_etag = false), k-1 peers are read and a rotten one passes its bytes on, as in Swift', async () => {
    reset('rot', 'rot', 'rot', 'rot');
    const src = await rebuildFragmentArchive({ ...request(true), checkEtag: false });
    const got = await drain(src.body);
    expect(totalGets()).toBe(K - 1);
    expect(src.check).toBe('off');
    expect(got.length).toBe(archives[5]!.length);
    expect(got).not.toEqual(archives[5]);
  });

  it('a peer that answers 404 makes it ask the next one', async () => {
    for (let miss = 0; miss < 4; miss++) {
      reset(...[0, 1, 2, 3].map((i) => (i === miss ? (404 as const) : ('ok' as const))));
      const src = await rebuildFragmentArchive(request(true));
      expect(await drain(src.body)).toEqual(archives[5]);
      expect(gets[miss]).toBeLessThanOrEqual(1);
      // the 404 cost one extra request at most
      expect(totalGets()).toBeLessThanOrEqual(K);
    }
  });

  it('too few fragments: every peer is asked, then it fails with the 404s counted', async () => {
    reset(404, 404, 'ok', 'ok');
    const e = await rebuildFragmentArchive(request(true)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RebuildFailed);
    expect((e as RebuildFailed).reason).toBe('insufficient');
    expect((e as RebuildFailed).errorStatuses).toEqual(['404']);
    expect((e as RebuildFailed).buckets.get(TS)).toEqual({ responses: 3, useful: expect.arrayContaining([0]) as unknown });
    expect(totalGets()).toBe(4);
  });

  it('no fragment at all, every peer an error: it fails as errors, not as too few fragments', async () => {
    reset(404, 404, 404, 404);
    const e = await rebuildFragmentArchive(request(false)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RebuildFailed);
    expect((e as RebuildFailed).reason).toBe('errors');
    expect((e as RebuildFailed).buckets.size).toBe(0);
  });

  it('a peer that never answers costs its node_timeout when it is needed, a short wait when it would only be the fragment more', async () => {
    reset('hang', 'hang', 'ok', 'ok');
    const t0 = Date.now();
    // two hung peers of four: at most three answers, so the rebuild must fail, after ~1 s
    const e = await rebuildFragmentArchive(request(true)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RebuildFailed);
    expect(Date.now() - t0).toBeLessThan(5000);
    // one hung of four: the local archive and three answers make k, and the fragment more is
    // not waited for until the hung peer's node_timeout (5 s here)
    reset('hang', 'ok', 'ok', 'ok');
    const t1 = Date.now();
    const src = await rebuildFragmentArchive({ ...request(true), nodeTimeout: 5 });
    expect(Date.now() - t1).toBeLessThan(2500);
    expect(await drain(src.body)).toEqual(archives[5]);
  });

  it('a peer that cuts its body short ends the rebuilt archive early, so the session fails', async () => {
    reset('cut', 'cut', 'cut', 'cut');
    const causes: string[] = [];
    const src = await rebuildFragmentArchive({ ...request(true), onSourceFailure: (cause) => causes.push(cause) });
    const got = await drain(src.body);
    expect(got.length).toBeLessThan(archives[5]!.length);
    expect(causes).toEqual(['source']);
  });

  it('an unreadable local archive is left out and the peers make up for it', async () => {
    reset();
    const src = await rebuildFragmentArchive({ ...request(true), local: { path: join(dir, 'gone.data'), durable: true } });
    expect(await drain(src.body)).toEqual(archives[5]);
    expect(totalGets()).toBe(K);
  });
});

describe("a speculative rebuild's log", () => {
  it('holds its lines until passed on, then passes them in order and the later ones straight through; unpassed, they go nowhere', () => {
    const got: string[] = [];
    const to = { warn: (m: string) => got.push(`warn ${m}`), error: (m: string) => got.push(`error ${m}`) };
    const held = new HeldLog();
    held.warn('a');
    held.error('b');
    expect(got).toEqual([]);
    held.pass(to);
    expect(got).toEqual(['warn a', 'error b']);
    held.error('c');
    held.warn('d');
    expect(got).toEqual(['warn a', 'error b', 'error c', 'warn d']);
    const dropped = new HeldLog();
    dropped.error('never');
    expect(got).toHaveLength(4);
  });
});
