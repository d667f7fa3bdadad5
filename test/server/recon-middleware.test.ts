// The healthcheck and recon middlewares of fragmend's object server, against Swift's own on the
// same config: every /recon/ answer of a Swift 2.30 object server and of fragmend's, node by
// node, byte for byte where the answer cannot change between two requests. Then real swift-recon,
// every check at once, against a cluster of fragmend object servers and against one of Swift's:
// the operator reads the same report.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectServer } from '../../src/server/object-server.js';
import { FRAGMEND_VERSION } from '../../src/version.js';
import { PYTHON } from '../helpers/swift-python.js';
import { pickFreePorts, realSwiftEnabled, swiftHttp, SwiftSandbox } from '../helpers/swift-cluster.js';

const NODES = 6;
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;
/** answers that cannot change between two requests a moment apart */
const EXACT = [
  'async',
  'replication',
  'replication/object',
  'replication/account',
  'replication/container',
  'updater/object',
  'updater/container',
  'auditor/object',
  'auditor/account',
  'auditor/container',
  'expirer/object',
  'reconstruction/object',
  'driveaudit',
  'sharding',
  'relinker',
  'devices',
  'unmounted',
  'diskusage',
  'ringmd5',
  'swiftconfmd5',
  'quarantined',
  'mounted',
];
/** Swift answers 404 "Invalid path" to these */
const INVALID = ['nonsense', 'replication/bogus', 'updater/account', 'expirer/container', 'reconstruction', 'reconstruction/container', '', 'auditor/'];

/** Swift's recon writers: json.dumps(entry, sort_keys=True) and a newline. */
function writeRecon(file: string, entry: string): void {
  const r = spawnSync(PYTHON, ['-c', 'import json, sys\nopen(sys.argv[1], "w").write(json.dumps(json.loads(sys.argv[2]), sort_keys=True) + "\\n")', file, entry], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

describe.skipIf(!realSwiftEnabled())("healthcheck and recon middlewares, against Swift's", () => {
  let sbx: SwiftSandbox;
  const ours = new Map<string, ObjectServer>();
  /** a conf of node 0 with devices = / (mount points among its entries) and a healthcheck disable_path */
  let extraConf = '';
  let extraPort = 0;
  let disableFile = '';

  const startOurs = async (key: string, conf: string, bindPort?: number) => {
    const s = await ObjectServer.fromConfFile(conf, { logger: pino({ level: 'silent' }), ...(bindPort === undefined ? {} : { bindPort }) });
    const { port } = await s.start();
    ours.set(key, s);
    return port;
  };
  const stopOurs = async () => {
    for (const s of ours.values()) await s.stop();
    ours.clear();
  };

  beforeAll(async () => {
    sbx = await SwiftSandbox.create({ objectNodes: NODES });
    const n0 = sbx.node(0);
    // Node 0: what the replicator, auditor, expirer, updater and reconstructor leave, with floats
    // whole and tiny, ints and a dict whose keys a JS object would reorder; node 1: the account
    // and container caches too; node 2: an object.recon that is not JSON.
    mkdirSync(n0.reconCache, { recursive: true });
    writeRecon(
      join(n0.reconCache, 'object.recon'),
      JSON.stringify({
        async_pending: 3,
        async_pending_last: 1796600000.5,
        object_reconstruction_time: 0.0123,
        object_reconstruction_last: 1796600001.123456,
        object_replication_time: 5.0,
        object_replication_last: 1796600002.0,
        replication_stats: { attempted: 12, success: 12.0, failure: 0, '10': 1, '2': 2 },
        replication_time: 1e-5,
        object_auditor_stats_ALL: { errors: 0, passes: 10, start_time: 1796600003.25, bytes_processed: 12345678901234 },
        object_auditor_stats_ZBF: {},
        object_expiration_pass: 0.5,
        expired_last_pass: 7,
        object_updater_sweep: 0.00012,
        'caf\u00e9': 'na\u00efve',
      }),
    );
    writeRecon(join(n0.reconCache, 'drive.recon'), JSON.stringify({ drive_audit_errors: 2 }));
    writeRecon(join(n0.reconCache, 'relinker.recon'), JSON.stringify({ devices: { d0: { parts_done: 4 } }, workers: { '100': { return_code: 0 } } }));
    const n1 = sbx.node(1);
    mkdirSync(n1.reconCache, { recursive: true });
    writeRecon(join(n1.reconCache, 'container.recon'), JSON.stringify({ container_updater_sweep: 1.5, sharding_stats: { sharding: {} }, replication_time: 2 }));
    writeRecon(join(n1.reconCache, 'account.recon'), JSON.stringify({ account_audits_passed: 5, account_auditor_pass_completed: 0.25 }));
    const n2 = sbx.node(2);
    mkdirSync(n2.reconCache, { recursive: true });
    writeFileSync(join(n2.reconCache, 'object.recon'), '{"async_pending": 1, oops\n');
    // quarantined objects of two policies and a container, on node 0's device
    const q = join(n0.devicesRoot, n0.devices[0]!, 'quarantined');
    for (const d of ['objects-1/aaa', 'objects-1/bbb', 'objects/ccc', 'objects-2/ddd', 'containers/eee']) mkdirSync(join(q, d), { recursive: true });

    disableFile = join(sbx.paths.root, 'healthcheck-disabled');
    [extraPort] = await pickFreePorts(1);
    extraConf = join(sbx.paths.root, 'etc', 'object-server', 'root-devices.conf');
    writeFileSync(
      extraConf,
      readFileSync(n0.conf, 'utf8')
        .replace(/^devices = .*$/m, 'devices = /')
        .replace(/^bind_port = .*$/m, `bind_port = ${extraPort}`)
        .replace(/^\[filter:healthcheck\]$/m, `[filter:healthcheck]\ndisable_path = ${disableFile}`),
    );
    await Promise.all([0, 1, 2, 3].map((i) => sbx.startObjectServer(i)));
    await sbx.startObjectServerFrom('object-root-devices', extraConf, extraPort);
  }, 120_000);

  afterAll(async () => {
    await stopOurs();
    await sbx?.cleanup();
  });

  /** GET (or another method) on Swift's server and on ours: status, content type and body of each. */
  const both = async (swiftPort: number, ourPort: number, path: string, method = 'GET') => {
    const [a, b] = await Promise.all([swiftHttp(swiftPort, method, path), swiftHttp(ourPort, method, path)]);
    return {
      swift: { status: a.status, type: a.headers['content-type'], length: a.headers['content-length'], body: a.body.toString('utf8') },
      ours: { status: b.status, type: b.headers['content-type'], length: b.headers['content-length'], body: b.body.toString('utf8') },
    };
  };

  it("answers every recon check as Swift's object server does, node by node", async () => {
    for (const i of [0, 1, 2, 3]) {
      const ourPort = await startOurs(`cmp-${i}`, sbx.node(i).conf, 0);
      for (const check of EXACT) {
        const { swift, ours } = await both(sbx.node(i).port, ourPort, `/recon/${check}`);
        expect(swift.status, `node ${i} ${check}: ${swift.body}`).toBe(200);
        expect(ours, `node ${i} /recon/${check}`).toEqual(swift);
      }
      for (const check of INVALID) {
        const { swift, ours } = await both(sbx.node(i).port, ourPort, `/recon/${check}`);
        expect(swift.status, `node ${i} ${check}`).toBe(404);
        expect(ours, `node ${i} /recon/${check}`).toEqual(swift);
      }
    }
  });

  it('fills in what a check found, as Swift does (the answers are not all empty)', async () => {
    const port = sbx.node(0).port;
    const get = async (check: string) => (await swiftHttp(port, 'GET', `/recon/${check}`)).body.toString('utf8');
    // the cases above exercised something: Swift itself saw the caches and the quarantine
    expect(await get('reconstruction/object')).toBe('{"object_reconstruction_last": 1796600001.123456, "object_reconstruction_time": 0.0123}');
    expect(JSON.parse(await get('quarantined'))).toMatchObject({ objects: 4, containers: 1, accounts: 0 });
    expect(JSON.parse(await get('quarantined')).policies).toEqual({ '0': { objects: 1 }, '1': { objects: 2 }, '2': { objects: 1 } });
    expect(await get('unmounted')).toBe(`[{"device": "${sbx.node(0).devices[0]}", "mounted": false}]`);
  });

  it('answers the checks whose values move with the same keys and kinds of value', async () => {
    const ourPort = await startOurs('volatile', sbx.node(0).conf, 0);
    for (const check of ['mem', 'load', 'sockstat', 'time', 'version']) {
      const { swift, ours } = await both(sbx.node(0).port, ourPort, `/recon/${check}`);
      expect([ours.status, ours.type], check).toEqual([swift.status, swift.type]);
      const a = JSON.parse(swift.body) as unknown;
      const b = JSON.parse(ours.body) as unknown;
      if (check === 'time') {
        expect(typeof b).toBe('number');
        expect(Math.abs((b as number) - (a as number))).toBeLessThan(5);
        expect(ours.body).toMatch(/^\d+\.\d+$/);
        continue;
      }
      if (check === 'version') {
        expect(b).toEqual({ version: `fragmend-${FRAGMEND_VERSION}` });
        continue;
      }
      const kinds = (o: unknown) => Object.entries(o as Record<string, unknown>).map(([k, v]) => [k, typeof v]);
      expect(kinds(b), check).toEqual(kinds(a));
    }
    // load averages are floats, written as Python writes them (0.0, not 0)
    const load = (await swiftHttp(ourPort, 'GET', '/recon/load')).body.toString('utf8');
    expect(load).toMatch(/^\{"1m": \d+\.\d+, "5m": \d+\.\d+, "15m": \d+\.\d+, "tasks": "\d+\/\d+", "processes": \d+\}$/);
  });

  it('lists a devices root with mount points in it as Swift does (mounted, size, used, available)', async () => {
    const ourPort = await startOurs('root-devices', extraConf, 0);
    for (const check of ['devices', 'unmounted', 'quarantined']) {
      const { swift, ours } = await both(extraPort, ourPort, `/recon/${check}`);
      expect(ours, check).toEqual(swift);
    }
    const { swift, ours } = await both(extraPort, ourPort, '/recon/diskusage');
    const a = JSON.parse(swift.body) as Array<Record<string, unknown>>;
    const b = JSON.parse(ours.body) as Array<Record<string, unknown>>;
    // /proc, /sys and /dev are mount points of every Linux system
    expect(a.filter((d) => d.mounted === true).map((d) => d.device)).toEqual(expect.arrayContaining(['proc', 'sys', 'dev']));
    expect(b.map((d) => [d.device, d.mounted, d.size])).toEqual(a.map((d) => [d.device, d.mounted, d.size]));
    for (const d of b.filter((x) => x.mounted)) expect([typeof d.used, typeof d.avail]).toEqual(['number', 'number']);
  });

  it("answers /healthcheck as Swift's middleware does, and 503 while its disable_path exists", async () => {
    const ourPort = await startOurs('healthcheck', extraConf, 0);
    for (const method of ['GET', 'HEAD', 'PUT']) {
      const { swift, ours: mine } = await both(extraPort, ourPort, '/healthcheck', method);
      expect(swift.status).toBe(200);
      expect(mine, method).toEqual(swift);
    }
    writeFileSync(disableFile, '');
    try {
      for (const method of ['GET', 'HEAD']) {
        const { swift, ours: mine } = await both(extraPort, ourPort, '/healthcheck', method);
        expect(swift.status).toBe(503);
        expect(mine, method).toEqual(swift);
      }
    } finally {
      rmSync(disableFile, { force: true });
    }
    expect((await swiftHttp(ourPort, 'GET', '/healthcheck')).status).toBe(200);
  });

  it("answers OPTIONS (swift-recon's server check) and serves the verbs replication_server allows, as Swift 2.30 does", async () => {
    const P1 = { 'X-Backend-Storage-Policy-Index': '1' };
    const dev = sbx.node(0).devices[0]!;
    for (const flag of ['true', 'false', null]) {
      let conf = sbx.node(0).conf;
      let swiftPort = sbx.node(0).port;
      if (flag !== null) {
        [swiftPort] = await pickFreePorts(1);
        conf = join(sbx.paths.root, 'etc', 'object-server', `replication-server-${flag}.conf`);
        writeFileSync(
          conf,
          readFileSync(sbx.node(0).conf, 'utf8')
            .replace(/^bind_port = .*$/m, `bind_port = ${swiftPort}`)
            .replace('[app:object-server]', `[app:object-server]\nreplication_server = ${flag}`),
        );
        await sbx.startObjectServerFrom(`object-replication-server-${flag}`, conf, swiftPort);
      }
      const ourPort = await startOurs(`replication-server-${flag}`, conf, 0);
      const [a, b] = await Promise.all([swiftHttp(swiftPort, 'OPTIONS', '/'), swiftHttp(ourPort, 'OPTIONS', '/')]);
      expect([b.status, b.headers.allow, b.headers['content-length'], b.headers['content-type']], `replication_server = ${flag}`).toEqual([a.status, a.headers.allow, a.headers['content-length'], a.headers['content-type']]);
      expect(a.headers.server).toMatch(/^object-server\//);
      expect(b.headers.server).toBe(`object-server/fragmend-${FRAGMEND_VERSION}`);
      for (const [method, path] of [
        ['GET', `/${dev}/1/a/c/o`],
        ['REPLICATE', `/${dev}/1`],
        ['COPY', `/${dev}/1/a/c/o`],
      ] as const) {
        const [x, y] = await Promise.all([swiftHttp(swiftPort, method, path, { headers: P1 }), swiftHttp(ourPort, method, path, { headers: P1 })]);
        expect(y.status, `${method} with replication_server = ${flag}`).toBe(x.status);
      }
    }
  });

  it('leaves /healthcheck and /recon/ to the app when the pipeline does not name them', async () => {
    const conf = join(sbx.paths.root, 'etc', 'object-server', 'bare.conf');
    writeFileSync(conf, readFileSync(sbx.node(0).conf, 'utf8').replace(/^pipeline = .*$/m, 'pipeline = object-server'));
    const port = await startOurs('bare', conf, 0);
    expect((await swiftHttp(port, 'GET', '/healthcheck')).status).toBe(400);
    expect((await swiftHttp(port, 'GET', '/recon/load')).status).toBe(400);
  });

  it('swift-recon reports the same of a cluster of fragmend object servers as of Swift\'s', async () => {
    await stopOurs();
    const checks = ['object', '--all', '--verbose'];
    await Promise.all([0, 1, 2, 3].map((i) => sbx.stopObjectServer(i)));
    for (let i = 0; i < NODES; i++) await startOurs(`ring-${i}`, sbx.node(i).conf);
    const fromOurs = await sbx.runRecon(checks);
    await stopOurs();
    await Promise.all([...Array(NODES).keys()].map((i) => sbx.startObjectServer(i)));
    const fromSwift = await sbx.runRecon(checks);
    expect(fromOurs.code, fromOurs.output).toBe(0);
    expect(fromSwift.code, fromSwift.output).toBe(0);
    // What moves between two runs: clocks, load, sockets, and the order in which the hosts
    // answered within a check; and the version line, where fragmend names itself.
    const mask = (out: string) =>
      out
        .split(/^={79}$/m)
        .map((section) =>
          section
            .split('\n')
            .filter((l) => l && !/version/i.test(l))
            .map((l) => l.replace(/\d+(\.\d+)?(e[+-]\d+)?/g, '#'))
            .sort()
            .join('\n'),
        );
    expect(mask(fromOurs.output)).toEqual(mask(fromSwift.output));
    // and swift-recon read from fragmend's servers what the caches hold
    for (const line of [
      'Validating server type \'object\' on 6 hosts',
      '6/6 hosts ok, 0 error[s] while checking hosts.',
      '[async_pending] low: 3, high: 3, avg: 3.0, total: 3, Failed: 83.3%, no_result: 5, reported: 1',
      '[replication_success] low: 12, high: 12, avg: 12.0, total: 12, Failed: 0.0%, no_result: 0, reported: 1',
      '[drive_audit_errors] low: 2, high: 2, avg: 2.0, total: 2, Failed: 83.3%, no_result: 5, reported: 1',
      '6/6 hosts matched, 0 error[s] while checking hosts.',
    ]) {
      expect(fromOurs.output).toContain(line);
    }
    expect(fromOurs.output).toMatch(/Most recent completion was \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(.*\) by 127\.0\.0\.1:\d+\./);
  }, 120_000);

  it("swift-recon -R reads what fragmend's reconstructor wrote, through Swift's object servers and through fragmend's", async () => {
    // (Swift's servers run on every node since the test above.) fragmend's reconstructor makes a
    // pass on nodes 3, 4 and 5, whose recon caches held nothing.
    const before = Date.now() / 1000;
    for (const i of [3, 4, 5]) {
      const r = spawnSync(process.execPath, [BIN, 'reconstructor', sbx.node(i).conf, '--once'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
    const check = (out: string) => {
      // node 0's cache (written as Swift writes it) and the three passes: four hosts report
      expect(out).toMatch(/\[object_reconstruction_time\] low: \d+(\.\d+)?, high: \d+(\.\d+)?, avg: [\d.]+, total: [\d.]+, Failed: 33\.3%, no_result: 2, reported: 4/);
      for (const i of [3, 4, 5]) {
        const line = new RegExp(`-> http://127\\.0\\.0\\.1:${sbx.node(i).port}/recon/reconstruction/object: \\{'object_reconstruction_last': ([\\d.]+), 'object_reconstruction_time': ([\\d.e-]+)\\}`).exec(out);
        expect(line, `node ${i} in:\n${out}`).not.toBeNull();
        expect(Number(line![1])).toBeGreaterThanOrEqual(before);
        expect(Number(line![2])).toBeLessThan(1);
      }
      expect(out).toMatch(/Most recent completion was .* by 127\.0\.0\.1:\d+\./);
    };
    const viaSwift = await sbx.runRecon(['object', '-R', '--verbose']);
    expect(viaSwift.code).toBe(0);
    check(viaSwift.output);
    await Promise.all([...Array(NODES).keys()].map((i) => sbx.stopObjectServer(i)));
    for (let i = 0; i < NODES; i++) await startOurs(`reconstructed-${i}`, sbx.node(i).conf);
    const viaOurs = await sbx.runRecon(['object', '-R', '--verbose']);
    expect(viaOurs.code).toBe(0);
    check(viaOurs.output);
  }, 120_000);
});
