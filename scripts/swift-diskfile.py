#!/usr/bin/python3
"""Drive real Swift's own diskfile, ring and EC code from tests, one JSON request per line.

    FRAGMEND_SWIFT_CONF=/tmp/sbx/etc/swift.conf /usr/bin/python3 swift-diskfile.py

stdin:  {"id": 1, "op": "get_hashes", "devices": "/tmp/sbx/node0", "device": "d0",
         "partition": 12, "policy": 1, "suffixes": ["147"]}
stdout: {"id": 1, "ok": true, "result": {...}}
        {"id": 1, "ok": false, "error": "DiskFileNotExist", "message": "...", ...}

The tool keeps serving after an error and exits at end of input. swift.conf is redirected exactly
as swift-launch.py does it (imported from beside this file), so hash prefix/suffix and policies
are the sandbox's. Bytes travel as base64; timestamps go out as Timestamp.internal strings.

Ops (object-addressing requests carry devices, device, partition, account, container, object,
policy (index or name); EC ones optionally frag_index):
  ping
  hash_path        account, container?, object?              -> md5 hex (sandbox prefix/suffix)
  get_nodes        policy | ring ("account"/"container"), account, container?, object?,
                   swift_dir?                                -> {partition, hash, primaries, handoffs}
  encode_object    policy, body                              -> fragment archives as the proxy makes them
  put              ..., body, metadata, timestamp?, durable (default true), frag_index?
  delete           ..., timestamp                            (tombstone, DiskFile.delete)
  write_metadata   ..., metadata, timestamp?                 (.meta, DiskFile.write_metadata)
  read             ..., frag_index?, frag_prefs?, body (default true)
  hash_dir         ...                                       -> {path, files}
  get_hashes       devices, device, partition, policy, suffixes?, skip_rehash?
  yield_hashes     devices, device, partition, policy, suffixes?, frag_index?, frag_prefs?
  invalidate_hash  devices, device, partition, policy, suffix
  consolidate_hashes devices, device, partition, policy
"""
import base64
import importlib.util
import json
import os
import sys
import traceback


def _load_launcher():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        'fragmend_swift_launch', os.path.join(here, 'swift-launch.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SWIFT_CONF = _load_launcher().redirect_swift_conf()

# Swift code may print; the protocol owns the real stdout.
_OUT = os.fdopen(os.dup(sys.stdout.fileno()), 'w', encoding='utf-8')
sys.stdout = sys.stderr

from swift.common import utils  # noqa: E402
from swift.common.exceptions import DiskFileDeleted  # noqa: E402
from swift.common.ring import Ring  # noqa: E402
from swift.common.storage_policy import POLICIES  # noqa: E402
from swift.common.utils import Timestamp, md5  # noqa: E402
from swift.obj import diskfile  # noqa: E402

LOGGER = utils.get_logger({'log_level': os.environ.get('FRAGMEND_DISKFILE_LOG_LEVEL', 'WARNING')},
                          name='swift-diskfile', log_to_console=True,
                          log_route='swift-diskfile')
DEFAULT_SWIFT_DIR = os.path.dirname(SWIFT_CONF)

_routers = {}
_rings = {}


def _router(devices):
    if devices not in _routers:
        conf = {'devices': devices, 'mount_check': 'false', 'disable_fallocate': 'true'}
        _routers[devices] = diskfile.DiskFileRouter(conf, LOGGER)
    return _routers[devices]


def _policy(value):
    if value is None:
        policy = POLICIES.default
    elif isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        policy = POLICIES.get_by_index(int(value))
    else:
        policy = POLICIES.get_by_name(value)
    if policy is None:
        raise ValueError('unknown policy %r' % (value,))
    return policy


def _mgr(req):
    return _router(_require(req, 'devices'))[_policy(req.get('policy'))]


def _require(req, key):
    if req.get(key) is None:
        raise KeyError('request needs %r' % key)
    return req[key]


def _ts(value):
    return None if value is None else Timestamp(value).internal


def _key(k):
    return k.internal if isinstance(k, Timestamp) else str(k)


def _jsonable(value):
    if isinstance(value, Timestamp):
        return value.internal
    if isinstance(value, bytes):
        return value.decode('utf-8', 'surrogateescape')
    if isinstance(value, dict):
        return {('null' if k is None else _key(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _diskfile(req, **kwargs):
    policy = _policy(req.get('policy'))
    for key in ('frag_index', 'frag_prefs'):
        if req.get(key) is not None:
            kwargs[key] = req[key]
    return _mgr(req).get_diskfile(
        _require(req, 'device'), str(_require(req, 'partition')), _require(req, 'account'),
        _require(req, 'container'), _require(req, 'object'), policy=policy, **kwargs)


def _hash_dir_listing(df):
    path = df._datadir
    files = sorted(os.listdir(path)) if os.path.isdir(path) else []
    return {'path': path, 'files': files}


def _node(dev, index=None):
    out = {k: dev.get(k) for k in ('id', 'device', 'ip', 'port', 'replication_ip',
                                   'replication_port', 'zone', 'region', 'weight')}
    if index is not None:
        out['index'] = index
    return out


# ---------------------------------------------------------------- ops

def op_ping(req):
    return {'swift_conf': SWIFT_CONF, 'pid': os.getpid()}


def op_hash_path(req):
    return utils.hash_path(_require(req, 'account'), req.get('container'), req.get('object'))


def op_get_nodes(req):
    swift_dir = req.get('swift_dir') or DEFAULT_SWIFT_DIR
    ring_name = req.get('ring')
    if ring_name in ('account', 'container'):
        key = (swift_dir, ring_name)
        if key not in _rings:
            _rings[key] = Ring(swift_dir, ring_name=ring_name)
        ring = _rings[key]
    else:
        ring = POLICIES.get_object_ring(int(_policy(req.get('policy'))), swift_dir)
    account, container, obj = _require(req, 'account'), req.get('container'), req.get('object')
    part, nodes = ring.get_nodes(account, container, obj)
    handoffs = [_node(dev) for dev in ring.get_more_nodes(part)]
    return {
        'partition': part,
        'hash': utils.hash_path(account, container, obj),
        'primaries': [_node(dev, dev.get('index', i)) for i, dev in enumerate(nodes)],
        'handoffs': handoffs,
    }


def op_encode_object(req):
    # the proxy's own segmenting/encoding generator, so archives match a proxy PUT byte for byte
    from swift.proxy.controllers.obj import chunk_transformer
    policy = _policy(req.get('policy'))
    if policy.policy_type != 'erasure_coding':
        raise ValueError('policy %s is not erasure coded' % policy.name)
    body = base64.b64decode(req.get('body') or '')
    transform = chunk_transformer(policy)
    next(transform)
    archives = [[] for _ in range(policy.ec_n_unique_fragments)]
    outputs = [transform.send(body)] if body else []
    outputs.append(transform.send(b''))
    for out in outputs:
        if out:
            for i, frag in enumerate(out):
                archives[i].append(frag)
    archives = [b''.join(parts) for parts in archives]
    return {
        'archives': [base64.b64encode(a).decode('ascii') for a in archives],
        'archive_etags': [md5(a, usedforsecurity=False).hexdigest() for a in archives],
        'object_etag': md5(body, usedforsecurity=False).hexdigest(),
        'object_length': len(body),
        'scheme': policy.ec_scheme_description,
        'segment_size': policy.ec_segment_size,
        'fragment_size': policy.fragment_size,
    }


def op_put(req):
    # the object server's PUT sequence: writer open/write/put, then commit unless no-commit
    body = base64.b64decode(req.get('body') or '')
    metadata = dict(req.get('metadata') or {})
    if req.get('timestamp') is not None:
        metadata['X-Timestamp'] = _ts(req['timestamp'])
    if 'X-Timestamp' not in metadata:
        raise KeyError('request needs timestamp or metadata X-Timestamp')
    metadata['X-Timestamp'] = _ts(metadata['X-Timestamp'])
    metadata.setdefault('Content-Type', 'application/octet-stream')
    df = _diskfile(req)
    writer = df.writer(size=len(body))
    try:
        writer.open()
        if body:
            writer.write(body)
        upload_size, etag = writer.chunks_finished()
        metadata.setdefault('Content-Length', str(upload_size))
        metadata.setdefault('ETag', etag)
        metadata = {k: str(v) for k, v in metadata.items()}
        writer.put(metadata)
        if req.get('durable', True):
            writer.commit(Timestamp(metadata['X-Timestamp']))
    finally:
        writer.close()
    out = _hash_dir_listing(df)
    out.update({'etag': etag, 'size': upload_size})
    return out


def op_delete(req):
    df = _diskfile(req)
    df.delete(Timestamp(_require(req, 'timestamp')))
    return _hash_dir_listing(df)


def op_write_metadata(req):
    metadata = dict(req.get('metadata') or {})
    if req.get('timestamp') is not None:
        metadata['X-Timestamp'] = req['timestamp']
    if 'X-Timestamp' not in metadata:
        raise KeyError('request needs timestamp or metadata X-Timestamp')
    metadata['X-Timestamp'] = _ts(metadata['X-Timestamp'])
    df = _diskfile(req)
    df.write_metadata({k: str(v) for k, v in metadata.items()})
    return _hash_dir_listing(df)


def op_read(req):
    df = _diskfile(req)
    with df.open():
        out = {
            'metadata': df.get_metadata(),
            'datafile_metadata': df.get_datafile_metadata(),
            'metafile_metadata': df.get_metafile_metadata(),
            'timestamp': df.timestamp,
            'data_timestamp': df.data_timestamp,
            'durable_timestamp': df.durable_timestamp,
            'content_length': df.content_length,
            'fragments': df.fragments,
            'files': _hash_dir_listing(df)['files'],
        }
        if req.get('body', True):
            reader = df.reader()
            try:
                data = b''.join(reader)
            finally:
                reader.close()
            out['body'] = base64.b64encode(data).decode('ascii')
    return out


def op_hash_dir(req):
    return _hash_dir_listing(_diskfile(req))


def op_get_hashes(req):
    mgr = _mgr(req)
    return mgr.get_hashes(_require(req, 'device'), str(_require(req, 'partition')),
                          req.get('suffixes') or [], _policy(req.get('policy')),
                          skip_rehash=bool(req.get('skip_rehash')))


def op_yield_hashes(req):
    mgr = _mgr(req)
    kwargs = {k: req[k] for k in ('frag_index', 'frag_prefs') if req.get(k) is not None}
    return [[h, ts] for h, ts in mgr.yield_hashes(
        _require(req, 'device'), str(_require(req, 'partition')), _policy(req.get('policy')),
        suffixes=req.get('suffixes'), **kwargs)]


def _partition_dir(req):
    mgr = _mgr(req)
    dev_path = mgr.get_dev_path(_require(req, 'device'), mount_check=False)
    return diskfile.get_part_path(dev_path, _policy(req.get('policy')),
                                  str(_require(req, 'partition')))


def op_invalidate_hash(req):
    diskfile.invalidate_hash(os.path.join(_partition_dir(req), _require(req, 'suffix')))
    return None


def op_consolidate_hashes(req):
    return diskfile.consolidate_hashes(_partition_dir(req))


OPS = {name[3:]: fn for name, fn in list(globals().items()) if name.startswith('op_')}


def handle(req):
    rid = req.get('id') if isinstance(req, dict) else None
    try:
        if not isinstance(req, dict):
            raise ValueError('a request is a JSON object')
        fn = OPS.get(req.get('op'))
        if fn is None:
            raise ValueError('unknown op %r (known: %s)' % (req.get('op'), ', '.join(sorted(OPS))))
        return {'id': rid, 'ok': True, 'result': _jsonable(fn(req))}
    except Exception as e:  # noqa: BLE001 -- every failure is an answer, the tool keeps serving
        resp = {'id': rid, 'ok': False, 'error': type(e).__name__, 'message': str(e)}
        if isinstance(e, DiskFileDeleted):
            resp['timestamp'] = _ts(e.timestamp)
        if os.environ.get('FRAGMEND_DISKFILE_TRACEBACK') == '1':
            resp['traceback'] = traceback.format_exc()
        return resp


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError as e:
            resp = {'id': None, 'ok': False, 'error': 'JSONDecodeError', 'message': str(e)}
        else:
            resp = handle(req)
        _OUT.write(json.dumps(resp) + '\n')
        _OUT.flush()


if __name__ == '__main__':
    main()
