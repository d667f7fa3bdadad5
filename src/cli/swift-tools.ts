// Operator commands that show how fragmend reads a Swift node, and that let anyone compare
// it with Swift's own tools: get-nodes (as swift-get-nodes) and suffix-hashes (what Swift's
// get_hashes, and so a REPLICATE request, returns for a partition).
import { basename, dirname, join } from 'node:path';
import type { Argv } from 'yargs';
import { ECDiskFileManager } from '../swift/diskfile.js';
import { loadSwiftConf, type StoragePolicy } from '../swift/policies.js';
import { Ring } from '../swift/ring.js';

function policyOf(conf: Awaited<ReturnType<typeof loadSwiftConf>>, name: string): StoragePolicy {
  const p = conf.policies.lookup(name);
  if (!p) throw new Error(`no storage policy ${JSON.stringify(name)} in ${conf.path}`);
  return p;
}

async function getNodes(a: { 'swift-dir': string; policy: string; account: string; container?: string; object?: string; json: boolean; all: boolean }) {
  const conf = await loadSwiftConf(a['swift-dir']);
  const policy = policyOf(conf, a.policy);
  const ring = await Ring.load(join(a['swift-dir'], `${policy.ringName}.ring.gz`), { hash: { prefix: conf.hashPathPrefix, suffix: conf.hashPathSuffix } });
  const { partition, nodes } = ring.getNodes(a.account, a.container, a.object);
  const handoffs = [...ring.getMoreNodes(partition)];
  if (a.json) {
    console.log(
      JSON.stringify({
        partition,
        primaries: nodes.map((n) => ({ id: n.id, ip: n.ip, port: n.port, device: n.device, index: n.index })),
        handoffs: handoffs.map((n) => ({ id: n.id, ip: n.ip, port: n.port, device: n.device, handoff_index: n.handoff_index })),
      }),
    );
    return;
  }
  const { hashPath } = await import('../swift/hash-path.js');
  const hash = hashPath(conf.hashPathPrefix, conf.hashPathSuffix, a.account, a.container, a.object);
  const out = [
    `Account  \t${a.account}`,
    `Container\t${a.container ?? 'None'}`,
    `Object   \t${a.object ?? 'None'}`,
    '',
    `Policy   \t${policy.name} (index ${policy.index})`,
    `Partition\t${partition}`,
    `Hash     \t${hash}`,
    '',
    ...nodes.map((n) => `Server:Port Device\t${n.ip}:${n.port} ${n.device}\t [Primary, index ${n.index}]`),
    ...(a.all ? handoffs : handoffs.slice(0, nodes.length)).map((n) => `Server:Port Device\t${n.ip}:${n.port} ${n.device}\t [Handoff]`),
  ];
  if (!a.all && handoffs.length > nodes.length) out.push('', `(${handoffs.length - nodes.length} more handoffs: --all shows them)`);
  console.log(out.join('\n'));
}

async function suffixHashes(a: { 'swift-dir': string; policy: string; partdir: string; json: boolean; 'reclaim-age': number }) {
  const conf = await loadSwiftConf(a['swift-dir']);
  const policy = policyOf(conf, a.policy);
  const partDir = a.partdir.replace(/\/+$/, '');
  const partition = basename(partDir);
  if (!/^\d+$/.test(partition)) throw new Error(`${a.partdir} is not a partition directory (…/objects-N/<partition>)`);
  const devPath = dirname(dirname(partDir));
  const mgr = new ECDiskFileManager({
    devices: dirname(devPath),
    mountCheck: false,
    reclaimAge: a['reclaim-age'],
    hashPrefix: conf.hashPathPrefix,
    hashSuffix: conf.hashPathSuffix,
    warn: (m) => console.error(m),
  });
  const { hashes } = await mgr.getHashes(devPath, partition, policy);
  const obj = Object.fromEntries(
    [...hashes].sort(([x], [y]) => (x < y ? -1 : 1)).map(([s, h]) => [s, h ? Object.fromEntries([...h].map(([k, v]) => [k === null ? 'null' : String(k), v])) : null]),
  );
  if (a.json) console.log(JSON.stringify(obj));
  else for (const [s, h] of Object.entries(obj)) console.log(`${s}\t${h ? Object.entries(h).map(([k, v]) => `${k}=${v}`).join(' ') : 'None'}`);
}

export function swiftToolCommands(y: Argv): Argv {
  return y
    .command(
      'get-nodes <account> [container] [object]',
      'Partition, primaries (with fragment index) and handoffs of a name, as swift-get-nodes shows them',
      (b) =>
        b
          .positional('account', { type: 'string', demandOption: true })
          .positional('container', { type: 'string' })
          .positional('object', { type: 'string' })
          .option('swift-dir', { type: 'string', default: '/etc/swift' })
          .option('policy', { alias: 'P', type: 'string', default: '0', describe: 'storage policy name or index' })
          .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'show every handoff' })
          .option('json', { type: 'boolean', default: false }),
      (argv) => getNodes(argv as never),
    )
    .command(
      'suffix-hashes <partdir>',
      "A partition's suffix hashes as Swift's get_hashes computes them (consolidating hashes.invalid, updating hashes.pkl)",
      (b) =>
        b
          .positional('partdir', { type: 'string', demandOption: true, describe: '<devices>/<device>/objects-N/<partition>' })
          .option('swift-dir', { type: 'string', default: '/etc/swift' })
          .option('policy', { alias: 'P', type: 'string', default: '0' })
          .option('reclaim-age', { type: 'number', default: 604800 })
          .option('json', { type: 'boolean', default: false }),
      (argv) => suffixHashes(argv as never),
    );
}
