#!/usr/bin/python3
"""Ring fixtures and lookups computed by real OpenStack Swift.

Needs Debian's Swift (apt-get install -y swift python3-swift) and its python:

  /usr/bin/python3 scripts/gen-ring-fixtures.py              # writes test/fixtures/rings/
  /usr/bin/python3 scripts/gen-ring-fixtures.py oracle RING [--handoffs N] [--names FILE]
      prints, as one JSON line, what Swift's Ring answers for RING: the same record the
      fixtures hold, so live tests can compare a ring written by fragmend with Swift's view.

Rings are built with Swift's own RingBuilder (and one with the swift-ring-builder CLI,
the way the SAIO harness builds its EC ring) with fixed seeds, so rerunning this script
reproduces the same files. Lookups are stored as digests or compact arrays to keep the
fixtures small.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

from swift.common import utils as swift_utils
from swift.common.ring import Ring, RingBuilder

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'rings')

# Non-ASCII prefix: swift.conf is read as latin1 and re-encoded, i.e. its raw bytes are used;
# a UTF-8 swift.conf therefore hashes with the UTF-8 bytes of the value.
HASH_PREFIX = u'fixture-pr\u00e9fix'
HASH_SUFFIX = u'fixture-suffix'

NAME_COUNT = 2000


def set_hash_config(prefix, suffix):
    swift_utils.HASH_PATH_PREFIX = prefix
    swift_utils.HASH_PATH_SUFFIX = suffix


def swift_version():
    try:
        import swift
        return swift.__version__
    except Exception:
        return 'unknown'


# ------------------------------------------------------------------ names

ALPHABETS = [
    u'abcdefghijklmnopqrstuvwxyz0123456789',
    u'ABCXYZ-_.~ %+=@!',
    u'\u00e9\u00fc\u00f1\u00df\u00f8\u00e5',          # Latin-1 range
    u'\u4e2d\u6587\u5bf9\u8c61\u5bb9\u5668',          # CJK
    u'\u05e9\u05dc\u05d5\u05dd\u0627\u0644\u0639',    # RTL scripts
    u'\u0301\u0308\u200d\ufeff\ufffd',                # combining marks, ZWJ, BOM, U+FFFD
    u'\U0001f600\U0001f680\U0001d11e\U00010348',      # astral planes (surrogate pairs in JS)
]


def random_text(rng, lo, hi, allow_slash=False):
    n = rng.randint(lo, hi)
    out = []
    for _ in range(n):
        alphabet = ALPHABETS[0] if rng.random() < 0.6 else rng.choice(ALPHABETS)
        if allow_slash and rng.random() < 0.05:
            out.append(u'/')
        else:
            out.append(rng.choice(alphabet))
    s = u''.join(out)
    # Swift treats an empty container/object as absent; keep generated parts non-empty.
    return s or u'x'


def make_names():
    rng = random.Random(20240607)
    names = []
    for i in range(NAME_COUNT):
        account = u'AUTH_' + random_text(rng, 1, 5)
        kind = i % 10
        if kind == 0:
            names.append([account, None, None])
        elif kind in (1, 2):
            names.append([account, random_text(rng, 1, 8), None])
        else:
            names.append([account, random_text(rng, 1, 8),
                          random_text(rng, 1, 14, allow_slash=True)])
    return names


def hash_cases():
    """hash_path under several prefix/suffix settings, including non-UTF-8 bytes."""
    configs = [
        (b'', b'justasuffix'),
        (b'justaprefix', b''),
        (b'harnessprefix', b'harnesssuffix'),
        (u'pr\u00e9'.encode('utf8'), u'\u6587'.encode('utf8')),
        (b'\xe9\xff\x00', b'\x80suffix'),   # latin1 bytes as read from swift.conf
    ]
    paths = [
        (u'a', None, None),
        (u'a', u'c', None),
        (u'a', u'c', u'o'),
        (u'AUTH_test', u'c-ec42', u'obj-1M17'),
        (u'', None, None),
        (u'a', u'', None),                       # empty container counts as absent
        (u'a', u'c', u''),                       # empty object counts as absent
        (u'AUTH_\u00e9', u'\u4e2d', u'\U0001f600/x/../y'),
        (u'a', u'c', u'o' * 300),
        (u'a/b', u'c/d', u'e/f'),
    ]
    cases = []
    for prefix, suffix in configs:
        set_hash_config(prefix, suffix)
        for a, c, o in paths:
            cases.append({
                'prefix_hex': prefix.hex(), 'suffix_hex': suffix.hex(),
                'account': a, 'container': c, 'object': o,
                'hex': swift_utils.hash_path(a, c, o),
            })
    return cases


# ------------------------------------------------------------------ lookups

def part_line(primaries, handoffs):
    return '%s|%s' % (','.join(str(d) for d in primaries),
                      ','.join(str(d) for d in handoffs))


def short_digest(text):
    return hashlib.md5(text.encode('ascii')).hexdigest()[:8]


def ring_lookups(ring_path, handoff_limit, names, full):
    """What Swift's Ring answers for every partition and for every name."""
    ring = Ring(ring_path, reload_time=1 << 30)
    parts = ring.partition_count
    part_lines = []
    explicit = []
    for part in range(parts):
        prim = ring.get_part_nodes(part)
        assert [n['index'] for n in prim] == list(range(len(prim)))
        hand = []
        for i, node in enumerate(ring.get_more_nodes(part)):
            assert node['handoff_index'] == i
            if handoff_limit is not None and i >= handoff_limit:
                break
            hand.append(node['id'])
        prim_ids = [n['id'] for n in prim]
        part_lines.append(part_line(prim_ids, hand))
        if full:
            explicit.append([prim_ids, hand])

    name_lines = []
    for a, c, o in names:
        part, nodes = ring.get_nodes(a, c, o)
        name_lines.append('%d|%s' % (part, ','.join(str(n['id']) for n in nodes)))

    rec = {
        'part_power': ring.part_power,
        'part_shift': 32 - ring.part_power,
        'partition_count': parts,
        'replica_count': ring.replica_count,
        'row_lengths': [len(r) for r in ring._replica2part2dev_id],
        'device_count': ring.device_count,
        'assigned_device_count': ring.assigned_device_count,
        'weighted_device_count': ring.weighted_device_count,
        'version': ring.version,
        'next_part_power': ring.next_part_power,
        'md5': ring.md5,
        'size': ring.size,
        'raw_size': ring.raw_size,
        'devs': ring.devs,
        'handoff_limit': handoff_limit,
        'parts_digest': ''.join(short_digest(l) for l in part_lines),
        'parts_sha256': hashlib.sha256(
            '\n'.join(part_lines).encode('ascii')).hexdigest(),
        'names_sha256': hashlib.sha256(
            '\n'.join(name_lines).encode('ascii')).hexdigest(),
        'names_head': name_lines[:40],
    }
    if full:
        rec['parts'] = explicit
    return rec


# ------------------------------------------------------------------ rings

def dev(id, region, zone, ip, port, device, weight, meta=''):
    return {'id': id, 'region': region, 'zone': zone, 'ip': ip, 'port': port,
            'replication_ip': ip.replace('10.0.', '10.1.'),
            'replication_port': port + 1000,
            'device': device, 'weight': weight, 'meta': meta}


def save(builder, name):
    path = os.path.join(OUT, name)
    builder.get_ring().save(path)
    return path


def ring_p4_r3():
    b = RingBuilder(4, 3, 1)
    b.add_dev(dev(0, 1, 1, '10.0.1.1', 6200, 'sda', 1.0))
    b.add_dev(dev(1, 1, 2, '10.0.2.1', 6200, 'sda', 1.0))
    b.add_dev(dev(2, 1, 3, '10.0.3.1', 6200, 'sda', 1.0))
    b.add_dev(dev(3, 1, 3, '10.0.3.1', 6200, 'sdb', 1.0))
    b.add_dev(dev(4, 1, 2, '10.0.2.1', 6200, 'sdb', 0.0, 'zero weight'))
    b.rebalance(seed=4)
    return save(b, 'p4-r3.ring.gz')


def ring_saio_cli():
    """The SAIO harness's EC ring, built the same way with the swift-ring-builder CLI."""
    tmp = tempfile.mkdtemp()
    try:
        builder = os.path.join(tmp, 'object-1.builder')
        run = lambda *args: subprocess.run(
            ['swift-ring-builder', builder] + list(args),
            check=args[0] != 'rebalance', stdout=subprocess.DEVNULL)
        run('create', '6', '6', '1')
        for n in range(1, 9):
            run('add', 'r1z%d-127.0.0.1:62%d0/d%d' % (n, n, n), '1')
        run('rebalance', '--seed', '1')
        dest = os.path.join(OUT, 'saio-object-1.ring.gz')
        shutil.copyfile(os.path.join(tmp, 'object-1.ring.gz'), dest)
        return dest
    finally:
        shutil.rmtree(tmp)


def ring_p8_r3_regions():
    """Two regions; a removed device (a hole in devs); a never-assigned zero-weight device;
    a device set to weight 0 that still holds partitions because min_part_hours blocks moves."""
    b = RingBuilder(8, 3, 1)
    i = 0
    for region, zones in ((1, (1, 2, 3)), (2, (1, 2))):
        for zone in zones:
            for host in (1, 2):
                ip = '10.0.%d%d.%d' % (region, zone, host)
                b.add_dev(dev(i, region, zone, ip, 6200, 'sd%s' % 'ab'[host - 1],
                              1.0 + (i % 3) * 0.5))
                i += 1
    b.add_dev(dev(i, 2, 3, '10.0.23.1', 6200, 'sdz', 0.0))
    b.rebalance(seed=8)
    b.remove_dev(3)
    b.pretend_min_part_hours_passed()
    b.rebalance(seed=9)
    b.set_dev_weight(5, 0.0)
    b.rebalance(seed=10)
    return save(b, 'p8-r3-regions.ring.gz')


def ring_p8_fractional():
    b = RingBuilder(8, 2.5, 1)
    i = 0
    for region in (1, 2):
        for zone in (1, 2):
            for d in ('sda', 'sdb'):
                b.add_dev(dev(i, region, zone, '10.0.%d.%d' % (region, zone), 6200 + region, d, 1.0))
                i += 1
    b.rebalance(seed=25)
    b.prepare_increase_partition_power()
    return save(b, 'p8-r2.5.ring.gz')


def ring_p10_r6():
    b = RingBuilder(10, 6, 1)
    i = 0
    for zone in (1, 2, 3, 4):
        for host in (1, 2):
            for d in ('sda', 'sdb'):
                b.add_dev(dev(i, 1, zone, '10.0.%d.%d' % (zone, host), 6200, d,
                              [1.0, 2.0, 1.5][i % 3]))
                i += 1
    b.rebalance(seed=6)
    return save(b, 'p10-r6.ring.gz')


def ring_p10_r14():
    b = RingBuilder(10, 14, 1)
    i = 0
    for region, zones in ((1, (1, 2, 3)), (2, (1, 2)), (3, (1, 2))):
        for zone in zones:
            for d in ('sda', 'sdb', 'sdc'):
                b.add_dev(dev(i, region, zone, '10.0.%d.%d' % (region, zone), 6200, d, 1.0))
                i += 1
    b.add_dev(dev(i, 1, 1, '10.0.1.1', 6200, 'sdz', 0.0))
    b.add_dev(dev(i + 1, 3, 4, '10.0.3.4', 6200, 'sdz', 0.0))
    b.rebalance(seed=14)
    return save(b, 'p10-r14.ring.gz')


def ring_p10_r3_wide():
    b = RingBuilder(10, 3, 1)
    i = 0
    for region in (1, 2, 3):
        for zone in (1, 2, 3):
            for host in (1, 2, 3):
                for d in ('sda', 'sdb'):
                    b.add_dev(dev(i, region, zone, '10.0.%d%d.%d' % (region, zone, host),
                                  6200, d, 1.0))
                    i += 1
    b.rebalance(seed=3)
    return save(b, 'p10-r3-wide.ring.gz')


# (builder, handoff limit, store every partition explicitly)
RINGS = [
    (ring_p4_r3, None, True),
    (ring_saio_cli, None, True),
    (ring_p8_r3_regions, None, False),
    (ring_p8_fractional, None, False),
    (ring_p10_r6, None, False),
    (ring_p10_r14, None, False),
    (ring_p10_r3_wide, 24, False),
]


def saio_check():
    """The placement the SAIO REPORT states for its EC ring (harness prefix/suffix)."""
    set_hash_config(b'harnessprefix', b'harnesssuffix')
    ring = Ring(os.path.join(OUT, 'saio-object-1.ring.gz'))
    part, nodes = ring.get_nodes('AUTH_test', 'c-ec42', 'obj-1M17')
    handoffs = [n['device'] for n in ring.get_more_nodes(part)]
    rec = {
        'hash_prefix': 'harnessprefix', 'hash_suffix': 'harnesssuffix',
        'name': ['AUTH_test', 'c-ec42', 'obj-1M17'],
        'hash': swift_utils.hash_path('AUTH_test', 'c-ec42', 'obj-1M17'),
        'partition': part,
        'primaries': [n['device'] for n in nodes],
        'handoffs': handoffs,
    }
    assert rec['hash'] == '06be8d460ea62e257bc137f2f7b0f147', rec
    assert part == 1 and rec['primaries'] == ['d6', 'd5', 'd2', 'd7', 'd4', 'd1'], rec
    assert handoffs == ['d3', 'd8'], rec
    return rec


def generate():
    os.makedirs(OUT, exist_ok=True)
    names = make_names()
    out = {
        'swift_version': swift_version(),
        'hash_prefix': HASH_PREFIX,
        'hash_suffix': HASH_SUFFIX,
        'names': names,
    }
    # The prefix goes in as the bytes a UTF-8 swift.conf would hold.
    set_hash_config(HASH_PREFIX.encode('utf8'), HASH_SUFFIX.encode('utf8'))
    hexes = [swift_utils.hash_path(*n) for n in names]
    out['names_hash_sha256'] = hashlib.sha256('\n'.join(hexes).encode('ascii')).hexdigest()
    out['names_hash_head'] = hexes[:100]
    out['names_top32'] = ''.join(h[:8] for h in hexes)

    rings = []
    for build, limit, full in RINGS:
        set_hash_config(HASH_PREFIX.encode('utf8'), HASH_SUFFIX.encode('utf8'))
        path = build()
        rec = {'file': os.path.basename(path)}
        rec.update(ring_lookups(path, limit, names, full))
        rings.append(rec)
        print('%-24s parts=%-5d replicas=%-4s devs=%d' % (
            rec['file'], rec['partition_count'], rec['replica_count'], rec['device_count']))
    out['rings'] = rings
    out['hash_cases'] = hash_cases()
    out['saio'] = saio_check()

    with open(os.path.join(OUT, 'expected.json'), 'w', encoding='utf8') as f:
        json.dump(out, f, ensure_ascii=False, sort_keys=True, separators=(',', ':'))
        f.write('\n')


def oracle(argv):
    p = argparse.ArgumentParser(prog='gen-ring-fixtures.py oracle')
    p.add_argument('ring')
    p.add_argument('--handoffs', type=int, default=None)
    p.add_argument('--names', help='JSON file: {"prefix","suffix","names":[[a,c,o],...]}')
    p.add_argument('--parts', help='comma-separated partitions to list explicitly')
    args = p.parse_args(argv)
    names, prefix, suffix = [], HASH_PREFIX, HASH_SUFFIX
    if args.names:
        with open(args.names, encoding='utf8') as f:
            spec = json.load(f)
        names, prefix, suffix = spec['names'], spec['prefix'], spec['suffix']
    set_hash_config(prefix.encode('utf8'), suffix.encode('utf8'))
    ring = Ring(args.ring, reload_time=1 << 30)
    if args.parts:
        # Large rings: a full sweep of get_more_nodes would take Swift minutes.
        rec = {'partition_count': ring.partition_count, 'replica_count': ring.replica_count,
               'assigned_device_count': ring.assigned_device_count, 'devs': ring.devs,
               'names': [[ring.get_part(*n), [d['id'] for d in ring.get_nodes(*n)[1]]]
                         for n in names]}
        explicit = {}
        for part in (int(x) for x in args.parts.split(',')):
            hand = []
            for i, node in enumerate(ring.get_more_nodes(part)):
                if args.handoffs is not None and i >= args.handoffs:
                    break
                hand.append(node['id'])
            explicit[str(part)] = [[n['id'] for n in ring.get_part_nodes(part)], hand]
        rec['explicit'] = explicit
    else:
        rec = ring_lookups(args.ring, args.handoffs, names, full=False)
    json.dump(rec, sys.stdout, sort_keys=True)
    sys.stdout.write('\n')


if __name__ == '__main__':
    if sys.argv[1:2] == ['oracle']:
        oracle(sys.argv[2:])
    else:
        generate()
