// The [object-reconstructor] section of Swift's object-server.conf (with [DEFAULT] inherited),
// with every option modern Swift reads and its default. Unknown options are ignored, as Swift
// ignores them; a bad value stops start-up with a message naming the option.
import { ConfigError, OptionReader, readConf, type Conf } from '../swift/conf.js';
import { readProcessSettings, type ProcessSettings } from '../swift/priority.js';

export interface ReconstructorConfig extends ProcessSettings {
  confPath: string;
  devices: string;
  mountCheck: boolean;
  swiftDir: string;
  ringIp: string;
  /** null when servers_per_port > 0: local devices are matched by IP only. */
  port: number | null;
  serversPerPort: number;
  interval: number;
  concurrency: number;
  reconstructorWorkers: number;
  statsInterval: number;
  nodeTimeout: number;
  connTimeout: number;
  httpTimeout: number;
  lockupTimeout: number;
  ringCheckInterval: number;
  reconCachePath: string;
  networkChunkSize: number;
  diskChunkSize: number;
  handoffsOnly: boolean;
  rebuildHandoffNodeCount: number;
  maxObjectsPerRevert: number;
  quarantineThreshold: number;
  quarantineAge: number;
  /** request_node_count: a function of the replica count. */
  requestNodeCount: (replicas: number) => number;
  reclaimAge: number;
  commitWindow: number;
  writeLegacyEcCrc: boolean | null;
  logName: string;
  logLevel: string;
  logStatsdHost: string | null;
  logStatsdPort: number;
  logStatsdDefaultSampleRate: number;
  logStatsdSampleRateFactor: number;
  logStatsdMetricPrefix: string;
  /** daemonize = false: one pass and exit, as --once (Swift's run_daemon) */
  daemonize: boolean;
  // Beyond Swift, all off by default.
  /** Serve Prometheus text metrics on this port (0: off). */
  metricsPort: number;
  metricsBindIp: string;
  maxObjectsPerSecond: number;
  maxBytesPerSecond: number;
  /**
   * Beyond Swift, on by default: each peer's archive is checked against the MD5 its ETag names
   * before the last segment is rebuilt from it (see archive-get.ts); false reads it as Swift does.
   */
  checkPeerEtag: boolean;
  /** Warnings produced while reading the config (deprecated options). */
  warnings: string[];
}

function requestNodeCount(value: string, where: string): (replicas: number) => number {
  const parts = value.toLowerCase().split(/\s+/).filter(Boolean);
  const n = Number(parts[0]);
  if (parts.length && /^[+-]?\d+$/.test(parts[0]!)) {
    if (parts.length === 1) return () => n;
    if (parts.length === 3 && parts[1] === '*' && parts[2] === 'replicas') return (r) => n * r;
  }
  throw new ConfigError(`${where}: Invalid request_node_count value: ${JSON.stringify(value)}`);
}

/** Reads and validates the reconstructor's settings from object-server.conf (or a conf.d). */
export async function loadReconstructorConfig(confPath: string): Promise<ReconstructorConfig> {
  const conf = await readConf(confPath, 'object-reconstructor', { logName: 'object-reconstructor' });
  return parseReconstructorConfig(conf, confPath);
}

export function parseReconstructorConfig(conf: Conf, confPath = conf.__file__ ?? 'object-server.conf'): ReconstructorConfig {
  const where = `[object-reconstructor] in ${confPath}`;
  const r = new OptionReader(conf, where);
  const warnings: string[] = [];
  const serversPerPort = r.int('servers_per_port', 0, { min: 0 });
  let interval: number;
  if (r.has('interval')) interval = r.float('interval', 30, { min: 0 });
  else interval = r.float('run_pause', 30, { min: 0 });
  if (r.has('run_pause')) {
    warnings.push(
      r.has('interval')
        ? 'Option object-reconstructor/run_pause is deprecated and object-reconstructor/interval is already configured. You can safely remove run_pause; it is now ignored and will be removed in a future version.'
        : 'Option object-reconstructor/run_pause is deprecated and will be removed in a future version. Update your configuration to use option object-reconstructor/interval.',
    );
  }
  let handoffsOnly: boolean;
  const dflt = r.has('handoffs_first') ? r.bool('handoffs_first', false) : false;
  if (r.has('handoffs_first')) warnings.push('The handoffs_first option is deprecated in favor of handoffs_only. This option may be ignored in a future release.');
  handoffsOnly = r.bool('handoffs_only', dflt);
  if (handoffsOnly) warnings.push('Handoff only mode is not intended for normal operation, use handoffs_only with care.');
  else if (dflt) warnings.push('Ignored handoffs_first option in favor of handoffs_only.');
  const reclaimAge = r.int('reclaim_age', 604800, { min: 0 });
  const legacyCrc = r.has('write_legacy_ec_crc') ? r.bool('write_legacy_ec_crc', false) : null;
  return {
    confPath,
    devices: r.str('devices', '/srv/node'),
    mountCheck: r.bool('mount_check', true),
    swiftDir: r.str('swift_dir', '/etc/swift'),
    ringIp: r.str('ring_ip', r.str('bind_ip', '0.0.0.0')),
    port: serversPerPort ? null : r.int('bind_port', 6200, { min: 0, max: 65535 }),
    serversPerPort,
    interval,
    concurrency: r.int('concurrency', 1, { min: 1 }),
    reconstructorWorkers: r.int('reconstructor_workers', 0, { min: 0 }),
    statsInterval: r.float('stats_interval', 300, { min: 0 }),
    nodeTimeout: r.float('node_timeout', 10, { min: 0 }),
    connTimeout: r.float('conn_timeout', 0.5, { min: 0 }),
    httpTimeout: r.int('http_timeout', 60, { min: 0 }),
    lockupTimeout: r.int('lockup_timeout', 1800, { min: 0 }),
    ringCheckInterval: r.float('ring_check_interval', 15, { min: 0 }),
    reconCachePath: r.str('recon_cache_path', '/var/cache/swift'),
    networkChunkSize: r.int('network_chunk_size', 65536, { min: 1 }),
    diskChunkSize: r.int('disk_chunk_size', 65536, { min: 1 }),
    handoffsOnly,
    rebuildHandoffNodeCount: r.int('rebuild_handoff_node_count', 2, { min: -1 }),
    maxObjectsPerRevert: r.int('max_objects_per_revert', 0, { min: 0 }),
    quarantineThreshold: r.int('quarantine_threshold', 0, { min: 0 }),
    quarantineAge: r.int('quarantine_age', reclaimAge, { min: 0 }),
    requestNodeCount: requestNodeCount(r.str('request_node_count', '2 * replicas'), where),
    reclaimAge,
    commitWindow: r.float('commit_window', 60, { min: 0 }),
    writeLegacyEcCrc: legacyCrc,
    logName: r.str('log_name', 'object-reconstructor'),
    logLevel: r.str('log_level', 'INFO').toUpperCase(),
    logStatsdHost: r.has('log_statsd_host') && r.str('log_statsd_host', '') ? r.str('log_statsd_host', '') : null,
    logStatsdPort: r.int('log_statsd_port', 8125, { min: 1, max: 65535 }),
    logStatsdDefaultSampleRate: r.float('log_statsd_default_sample_rate', 1, { min: 0, max: 1 }),
    logStatsdSampleRateFactor: r.float('log_statsd_sample_rate_factor', 1, { min: 0, max: 1 }),
    logStatsdMetricPrefix: r.str('log_statsd_metric_prefix', ''),
    daemonize: r.bool('daemonize', true),
    ...readProcessSettings(r, where),
    metricsPort: r.int('metrics_port', 0, { min: 0, max: 65535 }),
    metricsBindIp: r.str('metrics_bind_ip', '127.0.0.1'),
    maxObjectsPerSecond: r.float('max_objects_per_second', 0, { min: 0 }),
    maxBytesPerSecond: r.float('max_bytes_per_second', 0, { min: 0 }),
    checkPeerEtag: r.bool('check_peer_etag', true),
    warnings,
  };
}
