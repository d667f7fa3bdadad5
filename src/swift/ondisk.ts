// The files of one EC object directory: their names (<ts>#<fi>[#d].data, <ts>.ts,
// <ts>[-<ctype delta>].meta, legacy <ts>.durable) and which of them make up the object's
// current state, which are obsolete and which may be reclaimed — the choices of Swift's
// ECDiskFileManager.get_ondisk_files, made the same way so that fragmend and a Swift object
// server on the same disk agree on every object.
import { decodeTimestamps, encodeTimestamps, Timestamp, TimestampError } from './timestamp.js';

export class DiskFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export interface ECShape {
  ndata: number;
  nparity: number;
}

export interface FileInfo {
  filename: string;
  timestamp: Timestamp;
  ext: string;
  fragIndex: number | null;
  durable: boolean;
  ctypeTimestamp: Timestamp | null;
}

const RSYNC_TEMPFILE = /^\..*\.([a-zA-Z0-9_]){6}$/;

export function validateFragmentIndex(value: unknown, shape?: ECShape): number {
  const s = String(value);
  if (value === undefined || value === null || !/^\s*[+-]?\d+\s*$/.test(s)) throw new DiskFileError(`Bad fragment index: ${s}`);
  const fi = Number(s.trim());
  if (fi < 0) throw new DiskFileError(`Fragment index must not be negative: ${fi}`);
  if (shape && fi >= shape.ndata + shape.nparity) {
    throw new DiskFileError(`Fragment index must be less than ${shape.ndata + shape.nparity} for a ${shape.ndata}+${shape.nparity} policy: ${fi}`);
  }
  return fi;
}

function splitExt(filename: string): [string, string] {
  // os.path.splitext: the last dot, ignoring leading dots of the basename.
  const dot = filename.lastIndexOf('.');
  if (dot <= 0 || /^\.+$/.test(filename.slice(0, dot))) return [filename, ''];
  return [filename.slice(0, dot), filename.slice(dot)];
}

export function parseOnDiskFilename(filename: string, shape?: ECShape): FileInfo {
  const [stem, ext] = splitExt(filename);
  try {
    if (ext === '.data') {
      const parts = stem.split('#');
      const timestamp = new Timestamp(parts[0]!);
      const fragIndex = validateFragmentIndex(parts[1], shape);
      return { filename, timestamp, ext, fragIndex, durable: parts[2] === 'd', ctypeTimestamp: null };
    }
    if (ext === '.meta') {
      const [timestamp, ctype] = decodeTimestamps(stem, true);
      return { filename, timestamp, ext, fragIndex: null, durable: false, ctypeTimestamp: ctype ?? null };
    }
    return { filename, timestamp: new Timestamp(stem), ext, fragIndex: null, durable: false, ctypeTimestamp: null };
  } catch (e) {
    if (e instanceof TimestampError) throw new DiskFileError(`Invalid Timestamp value in filename ${JSON.stringify(filename)}`);
    throw e;
  }
}

export function makeOnDiskFilename(
  timestamp: Timestamp,
  ext: '.data' | '.ts' | '.meta' | '.durable',
  opts: { fragIndex?: number; durable?: boolean; ctypeTimestamp?: Timestamp | null } = {},
): string {
  if (ext === '.data') {
    const fi = validateFragmentIndex(opts.fragIndex);
    return `${timestamp.internal}#${fi}${opts.durable ? '#d' : ''}.data`;
  }
  if (ext === '.meta' && opts.ctypeTimestamp) return `${encodeTimestamps(timestamp, opts.ctypeTimestamp, undefined, true)}.meta`;
  return `${timestamp.internal}${ext}`;
}

export interface FragPref {
  timestamp: Timestamp;
  exclude: number[];
}

export interface OnDiskInfo {
  dataInfo?: FileInfo;
  metaInfo?: FileInfo;
  tsInfo?: FileInfo;
  ctypeInfo?: FileInfo;
  /** The newest set of fragments with a durable marker (null when none). */
  durableFragSet: FileInfo[] | null;
  chosenFragSet: FileInfo[] | null;
  /** Every set of fragments by internal timestamp, newest first, down to the durable one. */
  fragSets: Map<string, FileInfo[]>;
  obsolete: FileInfo[];
  possibleReclaim: FileInfo[];
  /** Names that are not Swift files at all. */
  unexpected: string[];
}

const byTimestampDesc = (a: FileInfo, b: FileInfo) => b.timestamp.compare(a.timestamp);

/** The first items satisfying cond, and the rest from the first that does not. */
function splitWhile(list: FileInfo[], cond: (f: FileInfo) => boolean): [FileInfo[], FileInfo[]] {
  const i = list.findIndex((f) => !cond(f));
  return i < 0 ? [list, []] : [list.slice(0, i), list.slice(i)];
}

const ctypeOrZero = (f: FileInfo) => f.ctypeTimestamp;
function ctypeCompare(a: FileInfo, b: FileInfo): number {
  const x = ctypeOrZero(a);
  const y = ctypeOrZero(b);
  if (!x && !y) return 0;
  if (!x) return -1;
  if (!y) return 1;
  return x.compare(y);
}

/**
 * Swift's get_ondisk_files for an EC policy. `fragIndex` asks for one fragment index;
 * `fragPrefs` (even empty) allows a non-durable fragment set to be chosen.
 */
export function getOnDiskFiles(files: readonly string[], opts: { fragIndex?: number | null; fragPrefs?: FragPref[] | null; shape?: ECShape } = {}): OnDiskInfo {
  const exts = new Map<string, FileInfo[]>();
  const unexpected: string[] = [];
  const obsolete: FileInfo[] = [];
  const possibleReclaim: FileInfo[] = [];
  for (const name of files) {
    try {
      const info = parseOnDiskFilename(name, opts.shape);
      if (!exts.has(info.ext)) exts.set(info.ext, []);
      exts.get(info.ext)!.push(info);
    } catch (e) {
      if (!(e instanceof DiskFileError)) throw e;
      unexpected.push(name);
    }
  }
  // A stable sort, newest first, like Python's sorted(reverse=True) on equal keys? Python's
  // reverse sort keeps equal items in their original order, as does this comparator.
  for (const [ext, list] of exts) exts.set(ext, [...list].sort(byTimestampDesc));
  const get = (ext: string) => exts.get(ext) ?? [];

  const ts = get('.ts');
  if (ts.length) {
    for (const ext of [...exts.keys()].filter((e) => e !== '.ts')) {
      const [newer, older] = splitWhile(get(ext), (f) => f.timestamp.compare(ts[0]!.timestamp) > 0);
      exts.set(ext, newer);
      obsolete.push(...older);
    }
    obsolete.push(...ts.slice(1));
    exts.set('.ts', ts.slice(0, 1));
  }

  let metas = get('.meta');
  if (metas.length) {
    let retain = 1;
    if (metas.length > 1) {
      const rest = [...metas.slice(1)].sort((a, b) => -ctypeCompare(a, b));
      metas = [metas[0]!, ...rest];
      if (ctypeCompare(metas[1]!, metas[0]!) > 0) {
        if (metas[1]!.timestamp.equals(metas[0]!.timestamp)) {
          metas = [metas[1]!, metas[0]!, ...metas.slice(2)];
          retain = 1;
        } else {
          retain = 2;
        }
      }
    }
    obsolete.push(...metas.slice(retain));
    exts.set('.meta', metas.slice(0, retain));
  }

  // EC: fragment sets by timestamp, the newest durable one, and the chosen one.
  let durableInfo: FileInfo | null = get('.durable')[0] ?? null;
  let allFrags = get('.data');
  const fragSets = new Map<string, FileInfo[]>();
  let durableFragSet: FileInfo[] | null = null;
  while (allFrags.length) {
    const newest = allFrags[0]!.timestamp;
    let set: FileInfo[];
    [set, allFrags] = splitWhile(allFrags, (f) => f.timestamp.compare(newest) >= 0);
    set = [...set].sort((a, b) => a.fragIndex! - b.fragIndex!);
    fragSets.set(newest.internal, set);
    for (const frag of set) {
      if (frag.durable) {
        if (!durableInfo || durableInfo.timestamp.compare(newest) < 0) durableInfo = frag;
        break;
      }
    }
    if (durableInfo && durableInfo.timestamp.equals(newest)) {
      durableFragSet = set;
      for (const frag of set) frag.durable = true;
      break;
    }
  }

  let fragIndex = opts.fragIndex ?? null;
  let chosenFragSet: FileInfo[] | null = null;
  if (opts.fragPrefs) {
    const candidates = new Map(fragSets);
    let found = false;
    for (const pref of opts.fragPrefs) {
      const set = candidates.get(pref.timestamp.internal);
      if (!set) continue;
      // Python takes the last of list(set(available) - set(exclude)): for small ints, the largest.
      const acceptable = [...new Set(set.map((f) => f.fragIndex!))].filter((fi) => !pref.exclude.includes(fi)).sort((a, b) => a - b);
      if (acceptable.length) {
        chosenFragSet = set;
        fragIndex = acceptable[acceptable.length - 1]!;
        found = true;
        break;
      }
      candidates.delete(pref.timestamp.internal);
    }
    if (!found && candidates.size) {
      const newest = [...candidates.values()].map((s) => s[0]!.timestamp).sort((a, b) => a.compare(b)).pop()!;
      chosenFragSet = candidates.get(newest.internal)!;
    }
  } else {
    chosenFragSet = durableFragSet;
  }

  const result: OnDiskInfo = { durableFragSet: null, chosenFragSet: null, fragSets, obsolete, possibleReclaim, unexpected };
  let chosen: FileInfo | undefined;
  if (chosenFragSet) {
    chosen = fragIndex !== null ? chosenFragSet.find((f) => f.fragIndex === fragIndex) : chosenFragSet[chosenFragSet.length - 1];
  }
  if (chosen) {
    result.dataInfo = chosen;
    result.durableFragSet = durableFragSet;
    result.chosenFragSet = chosenFragSet;
    if (chosenFragSet !== durableFragSet) {
      exts.set('.meta', splitWhile(get('.meta'), (f) => f.timestamp.compare(chosen!.timestamp) > 0)[0]);
    }
  }
  if (durableInfo) {
    for (const ext of [...exts.keys()]) {
      const [keep, older] = splitWhile(get(ext), (f) => f.timestamp.compare(durableInfo!.timestamp) >= 0);
      exts.set(ext, keep);
      obsolete.push(...older);
    }
  }
  if (get('.durable').length && !durableFragSet) {
    obsolete.push(...get('.durable'));
    exts.delete('.durable');
  }
  for (const set of fragSets.values()) {
    if (set === durableFragSet || set === chosenFragSet) continue;
    possibleReclaim.push(...set);
  }
  if (get('.meta').length && !durableFragSet) possibleReclaim.push(...get('.meta'));

  if (result.dataInfo) {
    const m = get('.meta');
    if (m.length) {
      result.metaInfo = m[0];
      const ctype = m[m.length - 1]!;
      if (ctype.ctypeTimestamp && ctype.ctypeTimestamp.compare(result.dataInfo.timestamp) > 0) result.ctypeInfo = ctype;
    }
  } else if (get('.ts').length) {
    result.tsInfo = get('.ts')[0];
  }
  return result;
}

/** Whether the chosen files form a state Swift's diskfile contract allows. */
export function verifyOnDiskFiles(info: OnDiskInfo, fragPrefs?: FragPref[] | null): boolean {
  const data = !!info.dataInfo;
  const meta = !!info.metaInfo;
  const ts = !!info.tsInfo;
  const base = (!data && !meta && !ts) || (ts && !data && !meta) || (data && !ts);
  if (!base) return false;
  const haveDurable = info.durableFragSet !== null || (data && fragPrefs != null);
  return data === haveDurable;
}

export const isRsyncTempfile = (name: string) => RSYNC_TEMPFILE.test(name);
