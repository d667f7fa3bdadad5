#!/usr/bin/python3
"""Answers codec questions with real PyECLib / liberasurecode, one JSON request per line.

Run with Debian's /usr/bin/python3 and python3-pyeclib (plus libisal2 and libjerasure2 for
the ISA-L and Jerasure backends). Tests use it to cross-check fragmend against the library
Swift runs. Bytes travel as base64.

Request:  {"op": "encode", "ec_type": "...", "k": 4, "m": 2, "data": "<b64>"}
          {"op": "decode", ..., "fragments": ["<b64>", ...]}
          {"op": "reconstruct", ..., "fragments": [...], "missing": [1, 2]}
          {"op": "fragments_needed", ..., "missing": [...], "exclude": [...]}
          {"op": "segment_info", ..., "data_len": N, "segment_size": S}
          {"op": "metadata", ..., "fragment": "<b64>"}
          {"op": "version"}
Optional "chksum_type": "inline_crc32". Reply: {"ok": true, "result": ...} or
{"ok": false, "error": "<exception class>", "message": "..."}.
"""
import base64
import json
import sys

from pyeclib.ec_iface import ECDriver

_drivers = {}


def driver(req):
    key = (req['ec_type'], req['k'], req['m'], req.get('chksum_type'))
    if key not in _drivers:
        kwargs = dict(k=req['k'], m=req['m'], ec_type=req['ec_type'])
        if req.get('chksum_type'):
            kwargs['chksum_type'] = req['chksum_type']
        _drivers[key] = ECDriver(**kwargs)
    return _drivers[key]


def b64(data):
    return base64.b64encode(data).decode('ascii')


def unb64(s):
    return base64.b64decode(s)


def handle(req):
    op = req['op']
    if op == 'version':
        import pyeclib.ec_iface as iface
        return {'liberasurecode': '%x' % iface.get_liberasurecode_version()
                if hasattr(iface, 'get_liberasurecode_version') else None}
    d = driver(req)
    if op == 'encode':
        return [b64(f) for f in d.encode(unb64(req['data']))]
    if op == 'decode':
        return b64(d.decode([unb64(f) for f in req['fragments']]))
    if op == 'reconstruct':
        return [b64(f) for f in d.reconstruct([unb64(f) for f in req['fragments']], list(req['missing']))]
    if op == 'fragments_needed':
        return d.fragments_needed(list(req['missing']), list(req.get('exclude', [])))
    if op == 'segment_info':
        return d.get_segment_info(req['data_len'], req['segment_size'])
    if op == 'metadata':
        md = d.get_metadata(unb64(req['fragment']), 1)
        return {k: (v if isinstance(v, (int, str)) else str(v)) for k, v in md.items()}
    raise ValueError('unknown op %r' % op)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            reply = {'ok': True, 'result': handle(json.loads(line))}
        except Exception as e:  # every failure is reported, the oracle keeps serving
            reply = {'ok': False, 'error': type(e).__name__, 'message': str(e)}
        sys.stdout.write(json.dumps(reply) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
