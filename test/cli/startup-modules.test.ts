// What a reconstructor start loads: a `--once` pass that hashes no bulk data loads neither
// node:crypto nor node:fs/promises (its short MD5s and file calls do without them), and pino's
// node:assert and node:worker_threads stay unloaded in the command-line bundle. A start-up cost
// of a few milliseconds each, paid by every process a cron or a harness starts.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;
const RING = new URL('../fixtures/rings/saio-object-1.ring.gz', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fragmend-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a reconstructor start', () => {
  it('runs a pass without loading node:crypto, node:fs/promises, node:worker_threads or node:assert', async () => {
    // an EC policy whose ring names this node's device d1 (127.0.0.1:6210), which is empty
    mkdirSync(join(dir, 'etc'));
    mkdirSync(join(dir, 'node', 'd1'), { recursive: true });
    copyFileSync(RING, join(dir, 'etc', 'object-1.ring.gz'));
    writeFileSync(
      join(dir, 'etc', 'swift.conf'),
      '[swift-hash]\nswift_hash_path_prefix = fixture-pr\u00e9fix\nswift_hash_path_suffix = fixture-suffix\n\n' +
        '[storage-policy:0]\nname = gold\ndefault = yes\n\n' +
        '[storage-policy:1]\nname = ec42\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n',
    );
    const conf = join(dir, 'object-server.conf');
    writeFileSync(conf, `[DEFAULT]\ndevices = ${join(dir, 'node')}\nmount_check = false\nswift_dir = ${join(dir, 'etc')}\nbind_ip = 127.0.0.1\nbind_port = 6210\nrecon_cache_path = ${dir}\nuser = ${userInfo().username}\n\n[object-reconstructor]\n`);
    const list = join(dir, 'modules.txt');
    const preload = join(dir, 'list-modules.cjs');
    writeFileSync(preload, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`);
    const r = await run(process.execPath, ['-r', preload, BIN, 'reconstructor', conf, '--once'], { env: { ...process.env, NODE_OPTIONS: undefined } });
    expect(r.stdout).toContain('Object reconstruction complete (once)');
    // the pass really ran: it wrote the recon cache
    expect(JSON.parse(readFileSync(join(dir, 'object.recon'), 'utf8'))).toHaveProperty('object_reconstruction_last');
    const loaded = readFileSync(list, 'utf8').split('\n');
    expect(loaded).toContain('NativeModule net');
    for (const m of ['crypto', 'fs/promises', 'worker_threads', 'assert']) expect(loaded, m).not.toContain(`NativeModule ${m}`);
  });
});
