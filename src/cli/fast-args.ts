// The reconstructor's arguments in their plain forms, read without yargs. A daemon started by the
// minute (`reconstructor --once` from cron) spent several milliseconds of its start-up building
// yargs' parser, for a command line of a config path and a flag or two. Anything beyond the
// forms below (--help, a repeated or unknown option, `--opt=value` of a flag, `--no-once`,
// bundled short flags, `--`) returns null, and yargs parses it, with its own messages.

export interface ReconstructorArgs {
  conf: string;
  once: boolean;
  devices?: string;
  partitions?: string;
  verbose: boolean;
  'worker-index'?: number;
}

const FLAGS: Record<string, 'once' | 'verbose'> = { '--once': 'once', '--verbose': 'verbose', '-v': 'verbose' };
const VALUES: Record<string, 'devices' | 'partitions' | 'worker-index'> = {
  '--devices': 'devices',
  '-d': 'devices',
  '--partitions': 'partitions',
  '-p': 'partitions',
  '--worker-index': 'worker-index',
};

/** `reconstructor <conf> [--once] [-d devs] [-p parts] [-v] [--worker-index n]`, or null. */
export function plainReconstructorArgs(args: readonly string[]): ReconstructorArgs | null {
  if (args[0] !== 'reconstructor') return null;
  const out: ReconstructorArgs = { conf: '', once: false, verbose: false };
  const seen = new Set<string>();
  let conf: string | null = null;
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) {
      if (conf !== null || a === '') return null;
      conf = a;
      continue;
    }
    let name = a;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      name = a.slice(0, eq);
      value = a.slice(eq + 1);
    }
    const flag = Object.hasOwn(FLAGS, name) ? FLAGS[name] : undefined;
    const opt = Object.hasOwn(VALUES, name) ? VALUES[name] : undefined;
    const key = flag ?? opt;
    if (key === undefined || seen.has(key)) return null;
    seen.add(key);
    if (flag) {
      if (value !== undefined) return null;
      out[flag] = true;
      continue;
    }
    if (value === undefined) {
      value = args[++i];
      // a value that looks like an option, or none at all, is for yargs to judge
      if (value === undefined || value.startsWith('-')) return null;
    }
    if (value === '') return null;
    if (opt === 'worker-index') {
      if (!/^(0|[1-9][0-9]{0,5})$/.test(value)) return null;
      out['worker-index'] = Number(value);
    } else {
      out[opt!] = value;
    }
  }
  if (conf === null) return null;
  out.conf = conf;
  return out;
}
