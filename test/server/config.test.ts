// object-server.conf as Swift reads it ([DEFAULT] + [app:object-server], or [object-server]),
// the options that change behaviour, and the `fragmend object-server` command's life cycle.
import { readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { objectServerCommand, runObjectServer } from '../../src/cli/object-server.js';
import { loadObjectServerConf, ObjectServer, pyTitle } from '../../src/server/object-server.js';
import { freePort, makeSandbox, request } from './harness.js';

const sbx = makeSandbox('osconf');
afterAll(() => sbx.cleanup());
const P1 = { 'X-Backend-Storage-Policy-Index': '1' };

function conf(name: string, text: string): string {
  const p = join(sbx.etc, name);
  writeFileSync(p, text);
  return p;
}

describe('object-server.conf', () => {
  it('reads [DEFAULT] and [app:object-server] with Swift defaults for what is not set', async () => {
    const o = await loadObjectServerConf(
      conf(
        'a.conf',
        '[DEFAULT]\ndevices = /srv/x\nmount_check = false\nbind_port = 6210\nclient_timeout = 5\n' +
          '[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\nclient_timeout = 7\n' +
          'replication_concurrency = 2\nreplication_concurrency_per_device = 0\nreplication_lock_timeout = 3\nallowed_headers = X-Foo, etag, content-disposition\n',
      ),
    );
    expect(o).toMatchObject({
      devices: '/srv/x',
      mountCheck: false,
      bindIp: '0.0.0.0',
      bindPort: 6210,
      swiftDir: '/etc/swift',
      clientTimeout: 7,
      replicationConcurrency: 2,
      replicationConcurrencyPerDevice: 0,
      replicationLockTimeout: 3,
      networkChunkSize: 65536,
      reclaimAge: 604800,
      allowedHeaders: ['x-foo', 'content-disposition'],
      replicationServer: null,
    });
  });

  it('falls back to [object-server]; refuses a file without either section and bad values, naming them', async () => {
    expect((await loadObjectServerConf(conf('b.conf', '[object-server]\nbind_port = 1234\nreplication_one_per_device = false\n'))).replicationConcurrencyPerDevice).toBe(0);
    await expect(loadObjectServerConf(conf('c.conf', '[DEFAULT]\ndevices = /x\n'))).rejects.toThrow(/app:object-server/);
    await expect(loadObjectServerConf(conf('d.conf', '[app:object-server]\nbind_port = sixty\n'))).rejects.toThrow(/bind_port must be an integer/);
  });

  it('pyTitle turns header names into the keys Swift stores', () => {
    expect(pyTitle('x-object-meta-fooBAR')).toBe('X-Object-Meta-Foobar');
    expect(pyTitle('x-object-sysmeta-ec-frag-index')).toBe('X-Object-Sysmeta-Ec-Frag-Index');
    expect(pyTitle('x-object-meta-a1b')).toBe('X-Object-Meta-A1B');
  });

  it('replication_server = false leaves REPLICATE and SSYNC out, true serves every verb, as Swift 2.30 does', async () => {
    const devices = sbx.devices('repl-split');
    for (const [flag, get, replicate] of [
      [true, 404, 200],
      [false, 404, 405],
    ] as const) {
      const s = new ObjectServer({ devices, mountCheck: false, bindIp: '127.0.0.1', bindPort: 0, swiftConf: sbx.swiftConf, replicationServer: flag, logRequests: false });
      const { port } = await s.start();
      try {
        expect((await request(port, 'GET', '/sdb/1/a/c/o', P1)).status).toBe(get);
        expect((await request(port, 'REPLICATE', '/sdb/1', P1)).status).toBe(replicate);
      } finally {
        await s.stop();
      }
    }
  });

  it("access log: a client's request at info, replication's only at debug", async () => {
    const devices = sbx.devices('access-log');
    for (const logLevel of ['INFO', 'DEBUG']) {
      const lines: Array<{ level: number; method?: string; path?: string; status?: number }> = [];
      const logDestination = { write: (l: string) => void lines.push(JSON.parse(l)) };
      const s = new ObjectServer({ devices, mountCheck: false, bindIp: '127.0.0.1', bindPort: 0, swiftConf: sbx.swiftConf, logLevel, logDestination });
      const { port } = await s.start();
      try {
        expect((await request(port, 'GET', '/sdb/1/a/c/o', P1)).status).toBe(404);
        const r = await request(port, 'REPLICATE', '/sdb/1', P1);
        expect(r.status).toBe(200);
        expect(r.header('content-length')).toBe(String(r.body.length));
      } finally {
        await s.stop();
      }
      const access = lines.filter((l) => l.method !== undefined).map((l) => [l.level, l.method, l.status]);
      expect(access, logLevel).toEqual(logLevel === 'INFO' ? [[30, 'GET', 404]] : [[30, 'GET', 404], [20, 'REPLICATE', 200]]);
    }
  });

  it('`fragmend object-server <conf>` serves until SIGTERM, logging JSON to log_file', async () => {
    const devices = sbx.devices('cli');
    const port = await freePort();
    const log = join(sbx.root, 'object-server.log');
    const path = conf('cli.conf', `[DEFAULT]\ndevices = ${devices}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = ${port}\nswift_dir = ${sbx.etc}\nlog_file = ${log}\nuser = ${userInfo().username}\n[app:object-server]\nuse = egg:swift#object\n`);
    // Only this test's handler may see the signal.
    const saved = process.listeners('SIGTERM');
    process.removeAllListeners('SIGTERM');
    try {
      const running = runObjectServer({ conf: path, verbose: true });
      let r = null;
      for (let i = 0; i < 100 && !r; i++) {
        r = await request(port, 'REPLICATE', '/sdb/1', P1).catch(() => null);
        if (!r) await new Promise((res) => setTimeout(res, 50));
      }
      expect(r?.status).toBe(200);
      process.emit('SIGTERM');
      expect(await running).toBe(0);
      await expect(request(port, 'REPLICATE', '/sdb/1', P1)).rejects.toThrow();
    } finally {
      for (const l of saved) process.on('SIGTERM', l);
    }
    await new Promise((res) => setTimeout(res, 200));
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string; method?: string; status?: number });
    expect(lines.some((l) => l.method === 'REPLICATE' && l.status === 200)).toBe(true);
    expect(lines.some((l) => /SIGTERM received/.test(l.msg))).toBe(true);
  });

  it('the command is registered under its name', async () => {
    const out = await objectServerCommand(yargs([]).scriptName('fragmend')).getHelp();
    expect(out).toMatch(/fragmend object-server <conf>/);
  });
});
