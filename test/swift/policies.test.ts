// Storage policies parse and validate as swift.common.storage_policy does (judged by Swift's
// own parse_storage_policies on the same swift.conf text).
import { describe, expect, it } from 'vitest';
import { ConfigParser } from '../../src/swift/conf.js';
import { parseSwiftConf, PolicyError } from '../../src/swift/policies.js';
import { runPython, swiftPythonEnabled } from '../helpers/swift-python.js';

const PY = String.raw`
import json, sys, configparser
from swift.common.storage_policy import parse_storage_policies, PolicyError
out = []
for text in json.load(sys.stdin):
    c = configparser.ConfigParser(strict=False)
    c.read_string(text)
    try:
        pols = parse_storage_policies(c)
    except (PolicyError, ValueError, KeyError) as e:  # an unknown policy_type is a KeyError in Swift
        out.append({'error': str(e)}); continue
    res = []
    for p in sorted(pols, key=int):
        d = {'index': p.idx, 'name': p.name, 'aliases': p.alias_list, 'default': bool(p.is_default),
             'deprecated': bool(p.is_deprecated), 'type': p.policy_type}
        if p.policy_type == 'erasure_coding':
            d.update({'ec_type': p.ec_type, 'ndata': p.ec_ndata, 'nparity': p.ec_nparity,
                      'segment': p.ec_segment_size, 'dup': p.ec_duplication_factor,
                      'fragment_size': p.fragment_size})
        res.append(d)
    out.append(res)
print(json.dumps(out))
`;

const HASH = '[swift-hash]\nswift_hash_path_suffix = changeme\n';
const CONFS = [
  '',
  '[storage-policy:0]\nname = gold\n',
  '[storage-policy:0]\nname = gold\naliases = yellow, orange\ndefault = yes\n[storage-policy:1]\nname = silver\n',
  '[storage-policy:0]\nname = repl\n[storage-policy:1]\nname = ec42\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\ndefault = true\n',
  '[storage-policy:0]\nname = repl\ndefault = true\n[storage-policy:2]\nname = ec104\npolicy_type = erasure_coding\nec_type = isa_l_rs_vand\nec_num_data_fragments = 10\nec_num_parity_fragments = 4\nec_object_segment_size = 65536\n',
  '[storage-policy:0]\nname = repl\ndefault = true\n[storage-policy:3]\nname = ec-jer\npolicy_type = erasure_coding\nec_type = jerasure_rs_vand\nec_num_data_fragments = 6\nec_num_parity_fragments = 3\nec_duplication_factor = 2\n',
  '[storage-policy:0]\nname = repl\ndefault = true\n[storage-policy:1]\nname = bad\npolicy_type = erasure_coding\nec_type = isa_l_rs_vand\nec_num_data_fragments = 10\nec_num_parity_fragments = 5\n',
  '[storage-policy:0]\nname = repl\ndefault = true\n[storage-policy:1]\nname = old\npolicy_type = erasure_coding\nec_type = isa_l_rs_vand\nec_num_data_fragments = 10\nec_num_parity_fragments = 5\ndeprecated = true\n',
  '[storage-policy:0]\nname = a\n[storage-policy:1]\nname = b\n',
  '[storage-policy:1]\nname = b\n',
  '[storage-policy:0]\nname = a\ndefault = yes\n[storage-policy:1]\nname = A\n',
  '[storage-policy:0]\nname = a\ndeprecated = yes\n',
  '[storage-policy:0]\nname = a b\n',
  '[storage-policy:0]\n',
  '[storage-policy:0]\nname = a\nfoo = bar\n',
  '[storage-policy:x]\nname = a\n',
  '[storage-policy:0]\nname = repl\ndefault = true\n[storage-policy:1]\nname = Policy-0\n',
  '[storage-policy:0]\nname = repl\ndefault = true\n[storage-policy:1]\nname = e\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\nec_num_data_fragments = 0\nec_num_parity_fragments = 2\n',
  '[storage-policy:0]\nname = repl\ndefault = true\n[storage-policy:1]\nname = e\npolicy_type = erasure_coding\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n',
  '[storage-policy:0]\nname = repl\ndefault = true\n[storage-policy:1]\nname = e\npolicy_type = erasure_coding\nec_type = nope\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n',
  '[storage-policy:0]\nname = repl\ndefault = yes\n[storage-policy:1]\nname = other\ndefault = yes\n',
  '[storage-policy:0]\nname = repl\ndefault = yes\ndeprecated = yes\n',
  '[storage-policy:0]\nname = repl\npolicy_type = bogus\n',
];

describe.runIf(swiftPythonEnabled())('storage policies, judged by Swift', () => {
  it('same policies or a failure for each swift.conf', () => {
    const theirs = runPython<Array<{ error: string } | Array<Record<string, unknown>>>>(PY, CONFS);
    CONFS.forEach((text, i) => {
      const parser = new ConfigParser({ strict: false });
      parser.readString(text + HASH);
      const exp = theirs[i]!;
      if ('error' in exp) {
        expect(() => parseSwiftConf(parser), `${text} -> ${exp.error}`).toThrow(PolicyError);
        return;
      }
      const got = [...parseSwiftConf(parser).policies]
        .sort((a, b) => a.index - b.index)
        .map((p) => ({
          index: p.index,
          name: p.name,
          aliases: p.aliases,
          default: p.isDefault,
          deprecated: p.isDeprecated,
          type: p.policyType,
          ...(p.ec
            ? { ec_type: p.ec.ecType, ndata: p.ec.ndata, nparity: p.ec.nparity, segment: p.ec.segmentSize, dup: p.ec.duplicationFactor, fragment_size: p.ec.fragmentSize }
            : {}),
        }));
      expect(got, text).toEqual(exp);
    });
  });
});

describe('[swift-hash]', () => {
  it('requires a prefix or a suffix', () => {
    const p = new ConfigParser({ strict: false });
    p.readString('[storage-policy:0]\nname = a\n');
    expect(() => parseSwiftConf(p)).toThrow(/both swift_hash_path_suffix and swift_hash_path_prefix are missing/);
    const q = new ConfigParser({ strict: false });
    q.readString('[swift-hash]\nswift_hash_path_prefix = pre\nswift_hash_path_suffix = suf\n');
    expect(parseSwiftConf(q)).toMatchObject({ hashPathPrefix: 'pre', hashPathSuffix: 'suf' });
    expect(parseSwiftConf(q).policies.default.name).toBe('Policy-0');
  });
});
