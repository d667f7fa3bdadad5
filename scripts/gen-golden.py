#!/usr/bin/python3
"""Writes test/fixtures/golden.json: fragments made by real PyECLib / liberasurecode.

Run with Debian's /usr/bin/python3 and python3-pyeclib, libisal2, libjerasure2:
    /usr/bin/python3 scripts/gen-golden.py > test/fixtures/golden.json

Inputs are not stored: both sides regenerate them with the same xorshift32 generator
(test/helpers/prng.ts), and fragments are kept as truncated SHA-256 digests so the fixture
stays small whatever the input size.
"""
import hashlib
import json
import os
import random
import struct
import sys

from pyeclib.ec_iface import ECDriver

EC_TYPES = ['liberasurecode_rs_vand', 'isa_l_rs_vand', 'isa_l_rs_cauchy', 'jerasure_rs_vand']
SHAPES = [(2, 1), (4, 2), (6, 3), (8, 4), (10, 4), (12, 4)]
LENGTHS = [1, 2, 7, 33, 100, 1000, 4097, 65536, 65557, 1048593]


def prng_bytes(seed, length):
    """xorshift32, each state emitted as 4 little-endian bytes."""
    s = seed & 0xffffffff or 1
    words = []
    for _ in range((length + 3) // 4):
        s ^= (s << 13) & 0xffffffff
        s ^= s >> 17
        s ^= (s << 5) & 0xffffffff
        words.append(s)
    return struct.pack('<%dI' % len(words), *words)[:length]


def digest(b):
    return hashlib.sha256(b).hexdigest()[:16]


def case_seed(ec_type, k, m, length):
    return (EC_TYPES.index(ec_type) * 1000003 + k * 10007 + m * 101 + length) & 0xffffffff


def main():
    out = {'generator': 'scripts/gen-golden.py', 'prng': 'xorshift32-le', 'cases': [],
           'segment_info': [], 'fragments_needed': [], 'checksummed': [], 'legacy_crc': []}
    rng = random.Random(1234)
    for ec_type in EC_TYPES:
        for k, m in SHAPES:
            d = ECDriver(k=k, m=m, ec_type=ec_type)
            for length in LENGTHS:
                seed = case_seed(ec_type, k, m, length)
                data = prng_bytes(seed, length)
                frags = d.encode(data)
                assert d.decode(frags) == data
                patterns = []
                for _ in range(2):
                    lost = sorted(rng.sample(range(k + m), rng.randint(1, m)))
                    survivors = [f for i, f in enumerate(frags) if i not in lost]
                    assert d.decode(survivors) == data
                    rebuilt = d.reconstruct(survivors, list(lost))
                    patterns.append({'missing': lost, 'rebuilt': [digest(f) for f in rebuilt]})
                out['cases'].append({'ec_type': ec_type, 'k': k, 'm': m, 'length': length, 'seed': seed,
                                     'fragment_length': len(frags[0]),
                                     'fragments': [digest(f) for f in frags],
                                     'header0': frags[0][:80].hex(),
                                     'reconstruct': patterns})
            for data_len, seg in [(0, 1048576), (1, 1048576), (1048576, 1048576), (1048577, 1048576),
                                  (1048576 + k, 1048576), (3 * 1048576 + 5, 1048576), (10 * 1048576, 1048576),
                                  (5000, 1024), (1024 * 7 + 1, 1024), (2047, 1024)]:
                info = d.get_segment_info(data_len, seg)
                out['segment_info'].append({'ec_type': ec_type, 'k': k, 'm': m, 'data_len': data_len,
                                            'segment_size': seg, 'info': info})
            for _ in range(3):
                missing = sorted(rng.sample(range(k + m), rng.randint(1, m)))
                rest = [i for i in range(k + m) if i not in missing]
                exclude = sorted(rng.sample(rest, rng.randint(0, min(len(rest) - k, 2))))
                out['fragments_needed'].append({'ec_type': ec_type, 'k': k, 'm': m, 'missing': missing,
                                                'exclude': exclude,
                                                'needed': d.fragments_needed(missing, exclude)})
        d = ECDriver(k=4, m=2, ec_type=ec_type, chksum_type='inline_crc32')
        for length in [5, 4096, 100003]:
            seed = case_seed(ec_type, 4, 2, length) ^ 0x5a5a
            frags = d.encode(prng_bytes(seed, length))
            rebuilt = d.reconstruct(frags[2:], [0, 1])
            out['checksummed'].append({'ec_type': ec_type, 'k': 4, 'm': 2, 'length': length, 'seed': seed,
                                       'fragments': [digest(f) for f in frags],
                                       'rebuilt01': [digest(f) for f in rebuilt],
                                       'header0': frags[0][:80].hex()})
    os.environ['LIBERASURECODE_WRITE_LEGACY_CRC'] = '1'
    for ec_type in EC_TYPES:
        for chk in [None, 'inline_crc32']:
            kwargs = dict(k=4, m=2, ec_type=ec_type)
            if chk:
                kwargs['chksum_type'] = chk
            d = ECDriver(**kwargs)
            seed = 0xc0ffee
            frags = d.encode(prng_bytes(seed, 3001))
            out['legacy_crc'].append({'ec_type': ec_type, 'k': 4, 'm': 2, 'chksum_type': chk or 'none',
                                      'length': 3001, 'seed': seed,
                                      'fragments': [digest(f) for f in frags],
                                      'headers': [f[:80].hex() for f in frags]})
    del os.environ['LIBERASURECODE_WRITE_LEGACY_CRC']
    json.dump(out, sys.stdout, indent=None, separators=(',', ':'))
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
