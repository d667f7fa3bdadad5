#!/usr/bin/python3
"""Times PyECLib operations for bench/codec.mjs, one JSON request per line on stdin.

Request: {"ec_type", "k", "m", "segment", "op", "seconds", "clock"}; op is encode, decode (the
first m data fragments lost), rebuild1 (fragment 0 lost, reconstruct it) or rebuildm (the
first m lost, reconstruct them); clock is "cpu" (process CPU time) or "wall".
Reply: {"gbps": segment bytes per second / 1e9, "iters": n}, or {"error": "..."}; a first
line {"pyeclib": version, "liberasurecode": version} says what is being measured.
"""
import json
import os
import sys
import time

try:
    import pyeclib
    from pyeclib.ec_iface import ECDriver
except Exception as e:  # noqa: BLE001 - the bench reports whatever stops PyECLib loading
    sys.stdout.write(json.dumps({'unavailable': repr(e)}) + '\n')
    sys.stdout.flush()
    sys.exit(0)

_cache = {}


def versions():
    out = {'python': sys.version.split()[0]}
    try:
        from importlib.metadata import version
        out['pyeclib'] = version('pyeclib')
    except Exception:  # noqa: BLE001 - versions are informative only
        out['pyeclib'] = getattr(pyeclib, '__version__', '?')
    try:
        # The libec_version field of a fragment header: what the library says it is.
        v = int.from_bytes(ECDriver(k=2, m=1, ec_type='liberasurecode_rs_vand').encode(b'x' * 64)[0][63:67], 'little')
        out['liberasurecode'] = '%d.%d.%d' % (v >> 16, (v >> 8) & 0xff, v & 0xff)
    except Exception:  # noqa: BLE001
        pass
    return out


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
    m = req['m']
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
    clock = time.process_time if req.get('clock') == 'cpu' else time.perf_counter
    fn()
    iters = 0
    start = clock()
    deadline = start + req['seconds']
    while True:
        fn()
        iters += 1
        now = clock()
        if now >= deadline:
            break
    return {'gbps': req['segment'] * iters / (now - start) / 1e9, 'iters': iters}


sys.stdout.write(json.dumps(versions()) + '\n')
sys.stdout.flush()
for line in sys.stdin:
    try:
        reply = run(json.loads(line))
    except Exception as e:  # noqa: BLE001 - reported to the bench, which goes on
        reply = {'error': repr(e)}
    sys.stdout.write(json.dumps(reply) + '\n')
    sys.stdout.flush()
