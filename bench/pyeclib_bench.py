#!/usr/bin/python3
"""Times PyECLib operations for bench/codec.mjs, one JSON request per line on stdin.

Request: {"ec_type", "k", "m", "segment", "op", "seconds"}; op is encode, decode (the first m
data fragments lost), rebuild1 (fragment 0 lost, reconstruct it) or rebuildm (the first m lost,
reconstruct them). Reply: {"gbps": segment bytes per second / 1e9, "iters": n}.
"""
import json
import os
import sys
import time

from pyeclib.ec_iface import ECDriver

_cache = {}


def setup(ec_type, k, m, segment):
    key = (ec_type, k, m, segment)
    if key not in _cache:
        d = ECDriver(k=k, m=m, ec_type=ec_type)
        data = os.urandom(segment)
        frags = d.encode(data)
        _cache[key] = (d, data, frags)
    return _cache[key]


def run(req):
    d, data, frags = setup(req['ec_type'], req['k'], req['m'], req['segment'])
    k, m = req['k'], req['m']
    op = req['op']
    if op == 'encode':
        fn = lambda: d.encode(data)
    elif op == 'decode':
        survivors = frags[m:]
        fn = lambda: d.decode(survivors)
    elif op == 'rebuild1':
        survivors = frags[1:]
        fn = lambda: d.reconstruct(survivors, [0])
    elif op == 'rebuildm':
        survivors = frags[m:]
        fn = lambda: d.reconstruct(survivors, list(range(m)))
    else:
        raise ValueError(op)
    fn()
    iters = 0
    start = time.perf_counter()
    deadline = start + req['seconds']
    while True:
        fn()
        iters += 1
        now = time.perf_counter()
        if now >= deadline:
            break
    return {'gbps': req['segment'] * iters / (now - start) / 1e9, 'iters': iters}


for line in sys.stdin:
    sys.stdout.write(json.dumps(run(json.loads(line))) + '\n')
    sys.stdout.flush()
