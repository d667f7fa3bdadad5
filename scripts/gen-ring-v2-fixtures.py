#!/usr/bin/python3
"""Ring format v2 fixtures and lookups computed by OpenStack Swift's own ring code.

Ring format v2 appeared in Swift 2.36; Debian's Swift 2.30 cannot read or write it, so this
script runs the ring code of a Swift source tree (the upstream master branch was used):

  git clone https://opendev.org/openstack/swift /tmp/swift-master   # or any checkout >= 2.36
  /usr/bin/python3 scripts/gen-ring-v2-fixtures.py /tmp/swift-master [--commit SHA]
      writes test/fixtures/rings/v2/: rings saved by that Swift as format v2 (and as v1 where
      the same data fits v1) plus expected.json, what that Swift's Ring answers for them.
  /usr/bin/python3 scripts/gen-ring-v2-fixtures.py /tmp/swift-master check RING... [--names FILE]
      prints, one JSON line per ring, what that Swift's Ring answers for RING (the record the
      fixtures hold), so rings written by fragmend can be compared with Swift's view
      (test/swift/ring-v2.test.ts does this when SWIFT_MASTER=/tmp/swift-master is set).

The Swift tree's own dependencies are needed (Debian's python3-swift pulls them in:
python3-eventlet, python3-six, ...); pbr, which only supplies a version string to a source
tree, is replaced by a stub when it is missing.

Builders use fixed seeds, so rerunning reproduces the same ring data. The gzip bytes depend
on the zlib build, so the files may differ byte-wise from the committed ones while holding the
same rings. The 2.30-written v1 fixtures in test/fixtures/rings/ are also converted to v2 here
and their lookups checked against the ones 2.30 recorded there.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
V1_DIR = os.path.join(HERE, '..', 'test', 'fixtures', 'rings')
OUT = os.path.join(V1_DIR, 'v2')


def import_swift(tree):
    """Import swift from `tree`, never from the system's python3-swift."""
    tree = os.path.abspath(tree)
    if not os.path.isfile(os.path.join(tree, 'swift', 'common', 'ring', 'io.py')):
        sys.exit('%s has no swift/common/ring/io.py: not a Swift >= 2.36 source tree' % tree)
    sys.path.insert(0, tree)
    try:
        import pbr.version  # noqa: F401
    except ImportError:
        pbr = types.ModuleType('pbr')
        pbr.version = types.ModuleType('pbr.version')

        class VersionInfo(object):
            def __init__(self, name):
                pass

            def release_string(self):
                return 'source-tree'

            version_string = release_string

        pbr.version.VersionInfo = VersionInfo
        sys.modules['pbr'] = pbr
        sys.modules['pbr.version'] = pbr.version
    import swift
    if not os.path.abspath(swift.__file__).startswith(tree + os.sep):
        sys.exit('imported swift from %s, not from %s' % (swift.__file__, tree))
    try:
        commit = subprocess.run(['git', '-C', tree, 'rev-parse', 'HEAD'], check=True,
                                capture_output=True, text=True).stdout.strip()
    except Exception:
        commit = 'unknown'
    return commit


def set_hash_config(prefix, suffix):
    from swift.common import utils
    utils.HASH_PATH_PREFIX = prefix
    utils.HASH_PATH_SUFFIX = suffix


# ------------------------------------------------------------------ lookups

def short_digest(text):
    return hashlib.md5(text.encode('ascii')).hexdigest()[:8]


def lookups(path, handoff_limit, names, explicit=False, digests=True):
    """What this Swift's Ring answers for every partition and every name, and what it loaded."""
    from swift.common.ring import Ring, RingData
    ring = Ring(path, reload_time=1 << 30)
    rd = RingData.load(path)
    part_lines = []
    parts = []
    for part in range(ring.partition_count):
        prim = ring.get_part_nodes(part)
        assert [n['index'] for n in prim] == list(range(len(prim)))
        hand = []
        for i, node in enumerate(ring.get_more_nodes(part)):
            assert node['handoff_index'] == i
            if handoff_limit is not None and i >= handoff_limit:
                break
            hand.append(node['id'])
        prim_ids = [n['id'] for n in prim]
        part_lines.append('%s|%s' % (','.join(map(str, prim_ids)), ','.join(map(str, hand))))
        parts.append([prim_ids, hand])
    name_lines = []
    for a, c, o in names:
        part, nodes = ring.get_nodes(a, c, o)
        name_lines.append('%d|%s' % (part, ','.join(str(n['id']) for n in nodes)))
    with open(path, 'rb') as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    rec = {
        'format_version': rd.format_version,
        'dev_id_bytes': ring.dev_id_bytes,
        'part_power': ring.part_power,
        'partition_count': ring.partition_count,
        'replica_count': ring.replica_count,
        'row_lengths': [len(r) for r in ring._replica2part2dev_id],
        'device_count': ring.device_count,
        'assigned_device_count': ring.assigned_device_count,
        'weighted_device_count': ring.weighted_device_count,
        'version': ring.version,
        'next_part_power': ring.next_part_power,
        'md5': md5,
        'size': ring.size,
        'raw_size': ring.raw_size,
        # Sparse, as one ring has a 4-byte id far past the others.
        'devs_length': len(ring.devs),
        'devs': {str(i): d for i, d in enumerate(ring.devs) if d is not None},
        'handoff_limit': handoff_limit,
        # The assignment table itself, rows in order, as json.dumps writes a list of lists.
        'table_sha256': hashlib.sha256(json.dumps(
            [list(r) for r in ring._replica2part2dev_id]).encode('ascii')).hexdigest(),
        'parts_sha256': hashlib.sha256('\n'.join(part_lines).encode('ascii')).hexdigest(),
        'names_sha256': hashlib.sha256('\n'.join(name_lines).encode('ascii')).hexdigest(),
        'names_head': name_lines[:40],
    }
    if digests:
        rec['parts_digest'] = ''.join(short_digest(l) for l in part_lines)
    if explicit:
        rec['parts'] = parts
    return rec


# ------------------------------------------------------------------ rings

def dev(region, zone, ip, device, weight, id=None, port=6200, meta=''):
    d = {'region': region, 'zone': zone, 'ip': ip, 'port': port,
         'replication_ip': ip.replace('10.', '172.', 1), 'replication_port': port + 1000,
         'device': device, 'weight': weight, 'meta': meta}
    if id is not None:
        d['id'] = id
    return d


def save(ring_data, name, also_v1):
    path = os.path.join(OUT, name + '.v2.ring.gz')
    ring_data.save(path, format_version=2)
    v1 = None
    if also_v1:
        v1 = os.path.join(OUT, name + '.v1.ring.gz')
        ring_data.save(v1, format_version=1)
    return path, v1


def ring_p4_r3_holes():
    """Two regions, a removed device (a hole in devs), a zero-weight device."""
    from swift.common.ring import RingBuilder
    b = RingBuilder(4, 3, 1)
    for i, (r, z) in enumerate([(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (1, 1)]):
        b.add_dev(dev(r, z, '10.0.%d.%d' % (r, z), 'sd' + 'abcdef'[i], 1.0 + (i % 2)))
    b.add_dev(dev(2, 3, '10.0.2.3', 'sdz', 0.0, meta='spare'))
    b.rebalance(seed=41)
    b.remove_dev(2)
    b.pretend_min_part_hours_passed()
    b.rebalance(seed=42)
    return save(b.get_ring(), 'p4-r3-holes', True)


def ring_p8_fractional_npp():
    """2.25 replicas over two regions, with next_part_power set."""
    from swift.common.ring import RingBuilder
    b = RingBuilder(8, 2.25, 1)
    for r in (1, 2):
        for z in (1, 2):
            for d in ('sda', 'sdb'):
                b.add_dev(dev(r, z, '10.0.%d.%d' % (r, z), d, 1.0, port=6200 + r))
    b.rebalance(seed=8)
    b.prepare_increase_partition_power()
    return save(b.get_ring(), 'p8-r2.25-npp', True)


def ring_p9_ec():
    """EC 4+2 over three regions, many zones and hosts; non-ASCII meta."""
    from swift.common.ring import RingBuilder
    b = RingBuilder(9, 6, 1)
    for r in (1, 2, 3):
        for z in (1, 2):
            for h in (1, 2):
                b.add_dev(dev(r, z, '10.%d.%d.%d' % (r, z, h), 'd%d' % h,
                              [1.0, 2.0, 0.5][(r + z + h) % 3], meta=u'r%dz%d \u00e9\u4e2d' % (r, z)))
    b.rebalance(seed=9)
    return save(b.get_ring(), 'p9-r6-ec', True)


def ring_p10_wide_ids():
    """Device ids past 65534, which the builder stores as 4-byte ids (v2 only)."""
    from swift.common.ring import RingBuilder
    b = RingBuilder(10, 3, 1)
    ids = [0, 1, 2, 3, 4, 5, 65534, 65535, 70000, 70001]
    for n, i in enumerate(ids):
        z = n % 4 + 1
        b.add_dev(dev(1 + n % 2, z, '10.0.%d.%d' % (z, n), 'sd%d' % n, 1.0, id=i))
    b.rebalance(seed=10)
    return save(b.get_ring(), 'p10-r3-wide-ids', False)


def ring_p5_custom_section():
    """RingData saved with an extra section, which readers must skip; no version at all."""
    from swift.common.ring import RingData

    class WithExtra(RingData):
        def serialize_v2(self, writer):
            super(WithExtra, self).serialize_v2(writer)
            with writer.section('example/extra-data'):
                writer.write_blob(b'not part of the ring' * 100)

    parts = 32
    devs = [dev(1, z, '10.0.0.%d' % z, 'sda', 1.0, id=z - 1) for z in (1, 2, 3, 4)]
    table = [[(p + r) % 4 for p in range(parts)] for r in range(2)] + \
        [[(p + 2) % 4 for p in range(parts // 2)]]
    rd = WithExtra(table, devs, 32 - 5)
    return save(rd, 'p5-r2.5-extra-section', False)


# (builder, handoff limit, list every partition explicitly)
RINGS = [
    (ring_p4_r3_holes, None, True),
    (ring_p8_fractional_npp, None, False),
    (ring_p9_ec, None, False),
    (ring_p10_wide_ids, None, False),
    (ring_p5_custom_section, None, True),
]


def generate(commit):
    from swift.common.ring import RingData
    with open(os.path.join(V1_DIR, 'expected.json'), encoding='utf8') as f:
        v1_expected = json.load(f)
    names = v1_expected['names']
    prefix, suffix = v1_expected['hash_prefix'], v1_expected['hash_suffix']
    set_hash_config(prefix.encode('utf8'), suffix.encode('utf8'))
    os.makedirs(OUT, exist_ok=True)
    out = {
        'swift_commit': commit,
        'hash_prefix': prefix,
        'hash_suffix': suffix,
        'names_from': 'test/fixtures/rings/expected.json',
        'names_sha256': hashlib.sha256(json.dumps(names, sort_keys=True).encode('utf8')).hexdigest(),
    }

    rings = []
    for build, limit, explicit in RINGS:
        path, v1 = build()
        rec = {'file': os.path.basename(path), 'v1_file': v1 and os.path.basename(v1)}
        rec.update(lookups(path, limit, names, explicit))
        if v1:
            # The same data as v1: this Swift must answer identically.
            other = lookups(v1, limit, names, explicit)
            for key in ('table_sha256', 'parts_sha256', 'names_sha256', 'devs', 'version',
                        'next_part_power'):
                assert other[key] == rec[key], (v1, key)
            assert other['format_version'] == 1
            rec['v1_md5'] = other['md5']
        rings.append(rec)
        print('%-34s v%d parts=%-5d replicas=%-5s devs=%d dev_id_bytes=%d' % (
            rec['file'], rec['format_version'], rec['partition_count'], rec['replica_count'],
            rec['device_count'], rec['dev_id_bytes']))
    out['rings'] = rings

    # The 2.30-written v1 fixtures, saved as v2 by this Swift.
    converted = []
    for v1rec in v1_expected['rings']:
        src = os.path.join(V1_DIR, v1rec['file'])
        name = v1rec['file'].replace('.ring.gz', '') + '.from-v1.v2.ring.gz'
        path = os.path.join(OUT, name)
        RingData.load(src).save(path, format_version=2)
        rec = lookups(path, v1rec['handoff_limit'], names, digests=False)
        for key in ('parts_sha256', 'names_sha256', 'names_head', 'replica_count', 'row_lengths'):
            assert rec[key] == v1rec[key], (name, key)
        converted.append({'file': name, 'v1_file': v1rec['file'], 'md5': rec['md5'],
                          'size': rec['size'], 'raw_size': rec['raw_size'],
                          'format_version': rec['format_version'],
                          'dev_id_bytes': rec['dev_id_bytes'],
                          'handoff_limit': rec['handoff_limit'],
                          'table_sha256': rec['table_sha256'],
                          'parts_sha256': rec['parts_sha256'],
                          'names_sha256': rec['names_sha256']})
        print('%-34s v2 from %s' % (name, v1rec['file']))
    out['converted'] = converted

    with open(os.path.join(OUT, 'expected.json'), 'w', encoding='utf8') as f:
        json.dump(out, f, ensure_ascii=False, sort_keys=True, separators=(',', ':'))
        f.write('\n')


def check(argv):
    p = argparse.ArgumentParser(prog='gen-ring-v2-fixtures.py TREE check')
    p.add_argument('rings', nargs='+')
    p.add_argument('--handoffs', type=int, default=None)
    p.add_argument('--names', help='JSON file: {"prefix","suffix","names":[[a,c,o],...]}')
    args = p.parse_args(argv)
    names, prefix, suffix = [], 'prefix', 'suffix'
    if args.names:
        with open(args.names, encoding='utf8') as f:
            spec = json.load(f)
        names, prefix, suffix = spec['names'], spec['prefix'], spec['suffix']
    set_hash_config(prefix.encode('utf8'), suffix.encode('utf8'))
    for path in args.rings:
        rec = lookups(path, args.handoffs, names)
        rec['file'] = path
        json.dump(rec, sys.stdout, sort_keys=True)
        sys.stdout.write('\n')


if __name__ == '__main__':
    if len(sys.argv) < 2 or sys.argv[1].startswith('-'):
        sys.exit(__doc__)
    swift_commit = import_swift(sys.argv[1])
    if sys.argv[2:3] == ['check']:
        check(sys.argv[3:])
    else:
        # --commit names the Swift commit when the tree is an export without .git
        gen = argparse.ArgumentParser(prog='gen-ring-v2-fixtures.py TREE')
        gen.add_argument('--commit', default=swift_commit)
        generate(gen.parse_args(sys.argv[2:]).commit)
