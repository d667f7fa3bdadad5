// `fragmend get-nodes` and `fragmend suffix-hashes`, against answers from real Swift: the
// SAIO ring's placement recorded by Swift's Ring, and Swift's get_hashes on the same partition.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { ConfigParser } from '../../src/swift/conf.js';
import { ECDiskFileManager } from '../../src/swift/diskfile.js';
import { parseSwiftConf } from '../../src/swift/policies.js';
import { PREFIX, SUFFIX, swift } from '../helpers/swift-ec-diskfile.js';
import { swiftPythonEnabled } from '../helpers/swift-python.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;
const cli = (...args: string[]) => run(process.execPath, [BIN, ...args]);
const root = mkdtempSync(join(tmpdir(), 'fragmend-tools-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const expected = JSON.parse(readFileSync(new URL('../fixtures/rings/expected.json', import.meta.url), 'utf8')).saio;
const swiftConf = (prefix: string, suffix: string) =>
  `[swift-hash]\nswift_hash_path_prefix = ${prefix}\nswift_hash_path_suffix = ${suffix}\n` +
  '[storage-policy:0]\nname = repl\ndefault = yes\n' +
  '[storage-policy:1]\nname = ec42\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n';

describe('fragmend get-nodes', () => {
  it("prints Swift's partition, primaries with indexes and every handoff", async () => {
    const dir = join(root, 'swift-dir');
    mkdirSync(dir);
    writeFileSync(join(dir, 'swift.conf'), swiftConf(expected.hash_prefix, expected.hash_suffix));
    copyFileSync(new URL('../fixtures/rings/saio-object-1.ring.gz', import.meta.url), join(dir, 'object-1.ring.gz'));
    const [account, container, object] = expected.name;
    const { stdout } = await cli('get-nodes', '--swift-dir', dir, '--policy', 'ec42', account, container, object, '--json');
    const got = JSON.parse(stdout);
    expect(got.partition).toBe(expected.partition);
    expect(got.primaries.map((n: { device: string }) => n.device)).toEqual(expected.primaries);
    expect(got.primaries.map((n: { index: number }) => n.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(got.handoffs.map((n: { device: string }) => n.device)).toEqual(expected.handoffs);
    const text = (await cli('get-nodes', '--swift-dir', dir, '-P', '1', account, container, object)).stdout;
    expect(text).toContain(`Hash     \t${expected.hash}`);
    expect(text).toMatch(/\[Primary, index 0\]/);
    await expect(cli('get-nodes', '--swift-dir', dir, '-P', 'nope', 'a')).rejects.toMatchObject({ stderr: expect.stringMatching(/no storage policy "nope"/) });
  });
});

describe.runIf(swiftPythonEnabled())('fragmend suffix-hashes', () => {
  it("equals Swift's get_hashes for the same partition", async () => {
    const dir = join(root, 'swift-dir2');
    mkdirSync(dir);
    writeFileSync(join(dir, 'swift.conf'), swiftConf(PREFIX, SUFFIX));
    const devices = join(root, 'devs');
    mkdirSync(join(devices, 'sda'), { recursive: true });
    const p = new ConfigParser({ strict: false });
    p.readString(swiftConf(PREFIX, SUFFIX));
    const policy = parseSwiftConf(p).policies.byIndex(1)!;
    const mgr = new ECDiskFileManager({ devices, mountCheck: false, hashPrefix: PREFIX, hashSuffix: SUFFIX });
    const ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 12; i++) {
      const body = ec.encode(new Uint8Array(300 + i).fill(i))[i % 6]!;
      const w = mgr.diskFile(join(devices, 'sda'), 5, 'AUTH_a', 'c', `obj-${i}`, policy, { fragIndex: i % 6 }).writer();
      await w.open();
      await w.write(body);
      await w.put({ 'X-Timestamp': `${now - 100 + i}.00000`, 'Content-Length': String(body.length), ETag: 'e' });
      if (i % 4) await w.commit(`${now - 100 + i}.00000`);
      await w.close();
    }
    const theirs = swift(devices, [{ op: 'hashes', part: 5 }])[0];
    rmSync(join(devices, 'sda', 'objects-1', '5', 'hashes.pkl'));
    const ours = JSON.parse((await cli('suffix-hashes', '--swift-dir', dir, '--policy', '1', join(devices, 'sda', 'objects-1', '5'), '--json')).stdout);
    expect(ours).toEqual(theirs);
    expect(Object.keys(ours).length).toBeGreaterThan(5);
  });
});
