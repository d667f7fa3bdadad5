// swift.conf: storage policies ([storage-policy:N]) with Swift's validation rules, and the
// [swift-hash] path prefix and suffix every name hash depends on.
import { join } from 'node:path';
import { BACKENDS, isECType, segmentInfo, type ECType } from '../codec/index.js';
import { ConfigError, ConfigParser, configTrueValue } from './conf.js';
import { pyInt } from './python-values.js';

export class PolicyError extends Error {
  constructor(message: string, index?: number | string) {
    super(index === undefined ? message : `${message}, for policy index ${index}`);
    this.name = 'PolicyError';
  }
}

export const LEGACY_POLICY_NAME = 'Policy-0';
export const DEFAULT_EC_OBJECT_SEGMENT_SIZE = 1048576;
const VALID_NAME = /^[-A-Za-z0-9]+$/;
/** Every ec_type PyECLib names; Swift accepts those its PyECLib can load. */
const PYECLIB_EC_TYPES = new Set([
  'jerasure_rs_vand', 'jerasure_rs_cauchy', 'flat_xor_hd_3', 'flat_xor_hd_4', 'isa_l_rs_vand',
  'shss', 'liberasurecode_rs_vand', 'libphazr', 'isa_l_rs_cauchy',
]);

export interface ECParams {
  ecType: string;
  /** False for an ec_type Swift knows but fragmend does not implement: such a policy is skipped. */
  supported: boolean;
  ndata: number;
  nparity: number;
  segmentSize: number;
  duplicationFactor: number;
  /** Fragments with distinct indexes: ndata + nparity. */
  nUniqueFragments: number;
  /** Bytes of one fragment of a full segment, header included (policy.fragment_size). */
  fragmentSize: number;
}

export interface StoragePolicy {
  index: number;
  name: string;
  /** The name first, then the other aliases. */
  aliases: string[];
  isDefault: boolean;
  isDeprecated: boolean;
  policyType: 'replication' | 'erasure_coding';
  diskfileModule: string;
  /** 'object' for policy 0, 'object-N' otherwise: the ring file and the objects-N directory stem. */
  ringName: string;
  ec?: ECParams;
}

const COMMON_OPTIONS = ['name', 'aliases', 'policy_type', 'default', 'deprecated', 'diskfile_module'];
const EC_OPTIONS = ['ec_type', 'ec_object_segment_size', 'ec_num_data_fragments', 'ec_num_parity_fragments', 'ec_duplication_factor'];

export function policyString(base: string, index: number): string {
  return index === 0 ? base : `${base}-${index}`;
}

function positiveInt(value: string | undefined, dflt: number | undefined, what: string, index: number): number {
  const n = value === undefined ? dflt : pyInt(value);
  if (n === undefined || n === null || n <= 0) throw new PolicyError(`Invalid ${what} ${JSON.stringify(value ?? null)}`, index);
  return n;
}

function buildPolicy(indexText: string, options: Map<string, string>): StoragePolicy {
  const index = pyInt(indexText);
  if (index === null || index < 0) throw new PolicyError('Invalid index', indexText);
  const policyType = options.get('policy_type') ?? 'replication';
  if (policyType !== 'replication' && policyType !== 'erasure_coding') throw new PolicyError(`Invalid type ${policyType}`, index);
  const allowed = new Set([...COMMON_OPTIONS, ...(policyType === 'erasure_coding' ? EC_OPTIONS : [])]);
  for (const k of options.keys()) {
    if (!allowed.has(k)) throw new PolicyError(`Invalid option ${JSON.stringify(k)} in storage-policy section`, index);
  }
  const aliases: string[] = [];
  const addName = (name: string) => {
    if (!name) throw new PolicyError(`Invalid name ${JSON.stringify(name)}`, index);
    if (!VALID_NAME.test(name)) throw new PolicyError(`Names are used as HTTP headers and may only contain letters, digits and '-'. Invalid name ${JSON.stringify(name)}`, index);
    if (name.toUpperCase() === LEGACY_POLICY_NAME.toUpperCase() && index !== 0) {
      throw new PolicyError(`The name ${LEGACY_POLICY_NAME} is reserved for policy index 0. Invalid name ${JSON.stringify(name)}`, index);
    }
    if (aliases.some((a) => a.toUpperCase() === name.toUpperCase())) throw new PolicyError(`The name ${name} is already assigned to this policy.`, index);
    aliases.push(name);
  };
  const name = options.get('name') ?? '';
  addName(name);
  for (const alias of (options.get('aliases') ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (alias !== name) addName(alias);
  }
  const isDeprecated = configTrueValue(options.get('deprecated') ?? false);
  const isDefault = configTrueValue(options.get('default') ?? false);
  if (isDeprecated && isDefault) throw new PolicyError('Deprecated policy can not be default.  Invalid config', index);
  const policy: StoragePolicy = {
    index,
    name,
    aliases,
    isDefault,
    isDeprecated,
    policyType,
    diskfileModule: options.get('diskfile_module') ?? (policyType === 'erasure_coding' ? 'egg:swift#erasure_coding.fs' : 'egg:swift#replication.fs'),
    ringName: policyString('object', index),
  };
  if (policyType === 'erasure_coding') {
    const ecType = options.get('ec_type');
    if (ecType === undefined) throw new PolicyError('Missing ec_type', index);
    if (!PYECLIB_EC_TYPES.has(ecType)) throw new PolicyError(`Wrong ec_type ${ecType} for policy ${name}, should be one of "${[...PYECLIB_EC_TYPES].join(', ')}"`, index);
    const ndata = positiveInt(options.get('ec_num_data_fragments'), undefined, 'ec_num_data_fragments', index);
    const nparity = positiveInt(options.get('ec_num_parity_fragments'), undefined, 'ec_num_parity_fragments', index);
    const segmentSize = positiveInt(options.get('ec_object_segment_size'), DEFAULT_EC_OBJECT_SEGMENT_SIZE, 'ec_object_segment_size', index);
    if (ecType === 'isa_l_rs_vand' && nparity >= 5 && !isDeprecated) {
      throw new PolicyError(`Storage policy ${name} uses an EC configuration known to harm data durability. This policy MUST be deprecated.`, index);
    }
    const dup = options.get('ec_duplication_factor');
    const duplicationFactor = dup === undefined ? 1 : pyInt(dup);
    if (duplicationFactor === null || duplicationFactor < 1) {
      throw new PolicyError(`Config option must be an positive int number, not "${dup}".`, index);
    }
    const supported = isECType(ecType) && ndata + nparity <= 32;
    const w = supported ? BACKENDS[ecType as ECType].w : 8;
    policy.ec = {
      ecType,
      supported,
      ndata,
      nparity,
      segmentSize,
      duplicationFactor,
      nUniqueFragments: ndata + nparity,
      fragmentSize: segmentInfo(segmentSize, segmentSize, ndata, w).fragmentSize,
    };
  }
  return policy;
}

export class StoragePolicies implements Iterable<StoragePolicy> {
  readonly default: StoragePolicy;
  private readonly byIndexMap = new Map<number, StoragePolicy>();
  private readonly byNameMap = new Map<string, StoragePolicy>();

  constructor(policies: StoragePolicy[]) {
    let dflt: StoragePolicy | undefined;
    for (const p of policies) {
      if (this.byIndexMap.has(p.index)) throw new PolicyError(`Duplicate index ${p.index} conflicts with ${this.byIndexMap.get(p.index)!.name}`);
      for (const n of p.aliases) {
        if (this.byNameMap.has(n.toUpperCase())) throw new PolicyError(`Duplicate name ${n} conflicts with policy ${this.byNameMap.get(n.toUpperCase())!.index}`);
      }
      if (p.isDefault) {
        if (dflt) throw new PolicyError(`Duplicate default ${p.index} conflicts with ${dflt.index}`);
        dflt = p;
      }
      this.add(p);
    }
    if (!this.byIndexMap.has(0)) {
      if (this.byIndexMap.size) throw new PolicyError('You must specify a storage policy section for policy index 0 in order to define multiple policies');
      this.add({ index: 0, name: LEGACY_POLICY_NAME, aliases: [LEGACY_POLICY_NAME], isDefault: false, isDeprecated: false, policyType: 'replication', diskfileModule: 'egg:swift#replication.fs', ringName: 'object' });
    }
    if (![...this].some((p) => !p.isDeprecated)) throw new PolicyError("Unable to find policy that's not deprecated!");
    if (!dflt) {
      if (this.byIndexMap.size > 1) throw new PolicyError('Unable to find default policy');
      dflt = this.byIndexMap.get(0)!;
      dflt.isDefault = true;
    }
    this.default = dflt;
  }

  private add(p: StoragePolicy): void {
    for (const n of p.aliases) this.byNameMap.set(n.toUpperCase(), p);
    this.byIndexMap.set(p.index, p);
  }

  [Symbol.iterator](): Iterator<StoragePolicy> {
    return this.byIndexMap.values();
  }

  get size(): number {
    return this.byIndexMap.size;
  }

  byIndex(index: number): StoragePolicy | undefined {
    return this.byIndexMap.get(index);
  }

  byName(name: string): StoragePolicy | undefined {
    return this.byNameMap.get(name.toUpperCase());
  }

  /** By name or by index (a string of digits), as swift-get-nodes takes a policy. */
  lookup(nameOrIndex: string | number): StoragePolicy | undefined {
    if (typeof nameOrIndex === 'number') return this.byIndex(nameOrIndex);
    return this.byName(nameOrIndex) ?? (/^\d+$/.test(nameOrIndex) ? this.byIndex(Number(nameOrIndex)) : undefined);
  }

  ecPolicies(): StoragePolicy[] {
    return [...this].filter((p) => p.policyType === 'erasure_coding');
  }
}

/** Swift's parse_storage_policies over a parsed swift.conf. */
export function parseStoragePolicies(parser: ConfigParser): StoragePolicies {
  const policies: StoragePolicy[] = [];
  for (const section of parser.sections()) {
    if (!section.startsWith('storage-policy:')) continue;
    const options = new Map(parser.items(section));
    policies.push(buildPolicy(section.slice('storage-policy:'.length), options));
  }
  return new StoragePolicies(policies);
}

export interface SwiftConf {
  path: string;
  policies: StoragePolicies;
  hashPathPrefix: string;
  hashPathSuffix: string;
}

/** Reads <swiftDir>/swift.conf: policies and the [swift-hash] settings (at least one required). */
export async function loadSwiftConf(swiftDir = '/etc/swift'): Promise<SwiftConf> {
  const path = join(swiftDir, 'swift.conf');
  const parser = new ConfigParser({ strict: false });
  if (!(await parser.readFile(path))) throw new ConfigError(`Unable to read ${path}`);
  return parseSwiftConf(parser, path);
}

export function parseSwiftConf(parser: ConfigParser, path = 'swift.conf'): SwiftConf {
  let policies: StoragePolicies;
  try {
    policies = parseStoragePolicies(parser);
  } catch (e) {
    if (e instanceof PolicyError) throw new PolicyError(`Invalid Storage Policy Configuration in ${path} (${e.message})`);
    throw e;
  }
  const hashPathPrefix = parser.hasSection('swift-hash') ? (parser.get('swift-hash', 'swift_hash_path_prefix') ?? '') : '';
  const hashPathSuffix = parser.hasSection('swift-hash') ? (parser.get('swift-hash', 'swift_hash_path_suffix') ?? '') : '';
  if (!hashPathPrefix && !hashPathSuffix) {
    throw new ConfigError(`[swift-hash]: both swift_hash_path_suffix and swift_hash_path_prefix are missing from ${path}`);
  }
  return { path, policies, hashPathPrefix, hashPathSuffix };
}
