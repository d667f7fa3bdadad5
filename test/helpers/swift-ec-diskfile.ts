// Swift's own ECDiskFileManager, run by Debian's python3-swift on a device tree of a test's
// own (no swift.conf needed: a 4+2 liberasurecode_rs_vand policy 1 is built by hand, and the
// hash prefix and suffix are set directly).
import { execFileSync } from 'node:child_process';
import { PYTHON } from './swift-python.js';

export const PREFIX = 'fragmend-pre';
export const SUFFIX = 'fragmend-suf';

const SWIFT = String.raw`
import json, sys, base64
import swift.common.utils as u
u.HASH_PATH_PREFIX = b'${PREFIX}'
u.HASH_PATH_SUFFIX = b'${SUFFIX}'
from swift.common.storage_policy import ECStoragePolicy
from swift.obj import diskfile
from swift.common.utils import Timestamp
import logging
policy = ECStoragePolicy(1, 'ec42', ec_type='liberasurecode_rs_vand', ec_ndata=4, ec_nparity=2)
req = json.load(sys.stdin)
mgr = diskfile.ECDiskFileManager({'devices': req['devices'], 'mount_check': 'false',
                                   'reclaim_age': str(req.get('reclaim_age', 604800))}, logging.getLogger('t'))
def hashes_json(h):
    return {s: ({('null' if k is None else str(k)): v for k, v in d.items()} if d else None) for s, d in h.items()}
out = []
for op in req['ops']:
    kind = op['op']
    if kind == 'put':
        df = mgr.get_diskfile('sda', op['part'], 'AUTH_a', 'c', op['obj'], policy, frag_index=op['fi'])
        with df.create() as w:
            body = base64.b64decode(op['body'])
            w.write(body)
            md = dict(op['metadata']); md['Content-Length'] = str(len(body))
            w.put(md)
            if op.get('durable', True):
                w.commit(Timestamp(md['X-Timestamp']))
        out.append(None)
    elif kind == 'delete':
        df = mgr.get_diskfile('sda', op['part'], 'AUTH_a', 'c', op['obj'], policy)
        df.delete(Timestamp(op['ts'])); out.append(None)
    elif kind == 'post':
        df = mgr.get_diskfile('sda', op['part'], 'AUTH_a', 'c', op['obj'], policy)
        df.write_metadata(op['metadata']); out.append(None)
    elif kind == 'open':
        df = mgr.get_diskfile('sda', op['part'], 'AUTH_a', 'c', op['obj'], policy, frag_index=op.get('fi'))
        try:
            with df.open():
                body = b''.join(df.reader())
                out.append({'metadata': df.get_metadata(), 'datafile': df.get_datafile_metadata(),
                            'body': base64.b64encode(body).decode(), 'durable': df.durable_timestamp.internal if df.durable_timestamp else None,
                            'fragments': {t.internal: v for t, v in (df.fragments or {}).items()}})
        except diskfile.DiskFileDeleted as e:
            out.append({'deleted': e.timestamp.internal})
        except diskfile.DiskFileNotExist:
            out.append({'notexist': True})
    elif kind == 'hashes':
        out.append(hashes_json(mgr.get_hashes('sda', op['part'], op.get('recalc', []), policy)))
    elif kind == 'yield':
        out.append([[h, {k: (v.internal if hasattr(v, 'internal') else v) for k, v in info.items()}]
                    for h, info in mgr.yield_hashes('sda', op['part'], policy, frag_index=op.get('fi'))])
    elif kind == 'read_pkl':
        out.append(hashes_json({k: v for k, v in diskfile.read_hashes(op['path']).items() if k not in ('valid', 'updated')}))
print(json.dumps(out))
`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function swift(devices: string, ops: object[]): any[] {
  return JSON.parse(execFileSync(PYTHON, ['-c', SWIFT], { input: JSON.stringify({ devices, ops }), encoding: 'utf8', maxBuffer: 1 << 26 }));
}

