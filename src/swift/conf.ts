// Swift's config files, read with the semantics of Python's configparser as Swift's readconf
// uses it: [DEFAULT] inheritance, 'key = value' and 'key: value', full-line '#'/';' comments
// (no inline comments), indented continuation lines, lower-cased keys, case-sensitive
// sections, %(name)s interpolation, conf.d directories. A config Swift rejects, fragmend
// rejects too, with the file and line in the message.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pyFloat, pyInt } from './python-values.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type Interpolation = 'basic' | 'nicer' | 'none';

export interface ConfigParserOptions {
  /** Values of the DEFAULT section before any file is read. */
  defaults?: Record<string, string | number | boolean>;
  /** Refuse a section or option repeated within one file (Python's default). */
  strict?: boolean;
  /** 'nicer' is Swift's readconf: values without '%(' are taken as they are. */
  interpolation?: Interpolation;
}

const MAX_INTERPOLATION_DEPTH = 10;
const DEFAULT_SECTION = 'DEFAULT';
const SECTION_RE = /^\[(.+)\]/;
const OPTION_RE = /^(.*?)\s*([=:])\s*(.*)$/;
const KEY_RE = /^%\(([^)]+)\)s/;

export class ConfigParser {
  private readonly defaultsMap = new Map<string, string[] | string>();
  private readonly sectionsMap = new Map<string, Map<string, string[] | string>>();
  private readonly strict: boolean;
  private readonly interpolation: Interpolation;

  constructor(opts: ConfigParserOptions = {}) {
    this.strict = opts.strict ?? true;
    this.interpolation = opts.interpolation ?? 'basic';
    for (const [k, v] of Object.entries(opts.defaults ?? {})) this.defaultsMap.set(k.toLowerCase(), String(v));
  }

  /** Parses one source; raises ConfigError on the first problem, as a whole. */
  readString(text: string, source = '<string>'): void {
    const added = new Set<string>();
    const errors: string[] = [];
    let cursect: Map<string, string[] | string> | null = null;
    let sectname = '';
    let optname: string | null = null;
    let indentLevel = 0;
    const lines = text.split(/\r\n|\n|\r/);
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    lines.forEach((line, i) => {
      const lineno = i + 1;
      const stripped = line.trim();
      const isComment = stripped.startsWith('#') || stripped.startsWith(';');
      const value = isComment ? '' : stripped;
      if (!value) {
        // A blank line inside a multi-line value is kept; a comment line is not.
        const cur = cursect && optname ? cursect.get(optname) : undefined;
        if (!isComment && Array.isArray(cur)) cur.push('');
        return;
      }
      const curIndent = line.search(/\S/);
      const cur = cursect && optname ? cursect.get(optname) : undefined;
      if (cursect && optname && curIndent > indentLevel) {
        if (Array.isArray(cur)) cur.push(value);
        return;
      }
      indentLevel = curIndent;
      const sm = SECTION_RE.exec(value);
      if (sm) {
        sectname = sm[1]!;
        if (this.sectionsMap.has(sectname)) {
          if (this.strict && added.has(sectname)) {
            throw new ConfigError(`${source}:${lineno}: section ${JSON.stringify(sectname)} already exists`);
          }
          cursect = this.sectionsMap.get(sectname)!;
          added.add(sectname);
        } else if (sectname === DEFAULT_SECTION) {
          cursect = this.defaultsMap;
        } else {
          cursect = new Map();
          this.sectionsMap.set(sectname, cursect);
          added.add(sectname);
        }
        optname = null;
        return;
      }
      if (!cursect) throw new ConfigError(`${source}:${lineno}: file contains no section headers: ${JSON.stringify(line)}`);
      const om = OPTION_RE.exec(value);
      if (!om || !om[1]) {
        errors.push(`${source}:${lineno}: cannot parse ${JSON.stringify(line)}`);
        return;
      }
      optname = om[1].trimEnd().toLowerCase();
      const key = `${sectname}\u0000${optname}`;
      if (this.strict && added.has(key)) {
        throw new ConfigError(`${source}:${lineno}: option ${JSON.stringify(optname)} in section ${JSON.stringify(sectname)} already exists`);
      }
      added.add(key);
      cursect.set(optname, [om[3]!.trim()]);
    });
    for (const sect of [this.defaultsMap, ...this.sectionsMap.values()]) {
      for (const [k, v] of sect) if (Array.isArray(v)) sect.set(k, v.join('\n').trimEnd());
    }
    if (errors.length) throw new ConfigError(`source contains parsing errors: ${errors.join('; ')}`);
  }

  /**
   * Reads a file; false when it cannot be opened (Python's read() skips such files). Plain
   * reads, as Python's are: a config is read at start, where each step through the thread pool
   * (open, stat, read, close) is a wait of its own for a process that has nothing else to do.
   */
  async readFile(path: string): Promise<boolean> {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return false;
    }
    this.readString(text, path);
    return true;
  }

  sections(): string[] {
    return [...this.sectionsMap.keys()];
  }

  hasSection(name: string): boolean {
    return this.sectionsMap.has(name);
  }

  /** DEFAULT's options then the section's own, interpolated unless raw. */
  items(section: string, raw = false): Array<[string, string]> {
    const sect = this.sectionsMap.get(section);
    if (!sect && section !== DEFAULT_SECTION) throw new ConfigError(`no section: ${JSON.stringify(section)}`);
    const merged = new Map<string, string>(this.defaultsMap as Map<string, string>);
    for (const [k, v] of sect ?? []) merged.set(k, v as string);
    return [...merged.keys()].map((k) => [k, raw ? merged.get(k)! : this.interpolate(section, k, merged.get(k)!, merged)]);
  }

  get(section: string, option: string, raw = false): string | undefined {
    const found = this.items(section, true).find(([k]) => k === option.toLowerCase());
    return found && (raw ? found[1] : this.items(section).find(([k]) => k === option.toLowerCase())![1]);
  }

  private interpolate(section: string, option: string, value: string, vars: Map<string, string>): string {
    if (this.interpolation === 'none') return value;
    if (this.interpolation === 'nicer' && !value.includes('%(')) return value;
    const out: string[] = [];
    const walk = (rest: string, depth: number): void => {
      if (depth > MAX_INTERPOLATION_DEPTH) {
        throw new ConfigError(`[${section}] ${option}: interpolation too deeply recursive (${JSON.stringify(value)})`);
      }
      while (rest) {
        const p = rest.indexOf('%');
        if (p < 0) {
          out.push(rest);
          return;
        }
        if (p > 0) {
          out.push(rest.slice(0, p));
          rest = rest.slice(p);
        }
        const c = rest.slice(1, 2);
        if (c === '%') {
          out.push('%');
          rest = rest.slice(2);
        } else if (c === '(') {
          const m = KEY_RE.exec(rest);
          if (!m) throw new ConfigError(`[${section}] ${option}: bad interpolation variable reference ${JSON.stringify(rest)}`);
          const name = m[1]!.toLowerCase();
          rest = rest.slice(m[0].length);
          const v = vars.get(name);
          if (v === undefined) throw new ConfigError(`[${section}] ${option}: bad interpolation, no option ${JSON.stringify(name)}`);
          if (v.includes('%')) walk(v, depth + 1);
          else out.push(v);
        } else {
          throw new ConfigError(`[${section}] ${option}: '%' must be followed by '%' or '(', found ${JSON.stringify(rest)}`);
        }
      }
    };
    walk(value, 1);
    return out.join('');
  }
}

export type Conf = Record<string, string>;

/**
 * Swift's readconf: a file, or every '*.conf' (not dot-file) of a conf.d directory in sorted
 * order, parsed as one. With a section name, that section's options (DEFAULT included) plus
 * log_name and __file__; without, every section.
 */
export async function readConf(path: string, sectionName: string, opts?: { logName?: string; defaults?: Record<string, string> }): Promise<Conf>;
export async function readConf(path: string, sectionName?: undefined, opts?: { logName?: string; defaults?: Record<string, string> }): Promise<Record<string, Conf | string>>;
export async function readConf(
  path: string,
  sectionName?: string,
  opts: { logName?: string; defaults?: Record<string, string> } = {},
): Promise<Conf | Record<string, Conf | string>> {
  const parser = new ConfigParser({ defaults: opts.defaults, interpolation: 'nicer' });
  let ok = false;
  let st: ReturnType<typeof statSync> | null = null;
  try {
    st = statSync(path);
  } catch {
    /* read as a file below, which fails with the message */
  }
  if (st?.isDirectory()) {
    const files = readdirSync(path).filter((f) => f.endsWith('.conf') && !f.startsWith('.')).sort();
    for (const f of files) ok = (await parser.readFile(join(path, f))) || ok;
  } else {
    ok = await parser.readFile(path);
  }
  if (!ok) throw new ConfigError(`Unable to read config from ${path}`);
  if (sectionName) {
    if (!parser.hasSection(sectionName)) throw new ConfigError(`Unable to find ${sectionName} config section in ${path}`);
    const conf: Conf = Object.fromEntries(parser.items(sectionName));
    if (!('log_name' in conf)) conf.log_name = opts.logName ?? sectionName;
    conf.__file__ = path;
    return conf;
  }
  const all: Record<string, Conf | string> = {};
  for (const s of parser.sections()) all[s] = Object.fromEntries(parser.items(s));
  all.__file__ = path;
  return all;
}

// ---------------------------------------------------------------- value helpers (swift.common.utils)

const TRUE_VALUES = new Set(['true', '1', 'yes', 'on', 't', 'y']);

export function configTrueValue(value: unknown): boolean {
  return value === true || (typeof value === 'string' && TRUE_VALUES.has(value.toLowerCase()));
}

/** An option read from a conf with its default, converted and validated; errors name the option. */
export class OptionReader {
  constructor(
    private readonly conf: Conf,
    private readonly where = 'config',
  ) {}

  has(name: string): boolean {
    return this.conf[name] !== undefined;
  }

  str(name: string, dflt: string): string {
    return this.conf[name] ?? dflt;
  }

  bool(name: string, dflt: boolean): boolean {
    const v = this.conf[name];
    return v === undefined ? dflt : configTrueValue(v);
  }

  int(name: string, dflt: number, check: { min?: number; max?: number } = {}): number {
    const v = this.conf[name];
    if (v === undefined) return dflt;
    const n = pyInt(v);
    if (n === null || (check.min !== undefined && n < check.min) || (check.max !== undefined && n > check.max)) {
      const range = [check.min !== undefined ? `>= ${check.min}` : '', check.max !== undefined ? `<= ${check.max}` : ''].filter(Boolean).join(' and ');
      throw new ConfigError(`${this.where}: ${name} must be an integer${range ? ' ' + range : ''}, not ${JSON.stringify(v)}`);
    }
    return n;
  }

  float(name: string, dflt: number, check: { min?: number; max?: number } = {}): number {
    const v = this.conf[name];
    if (v === undefined) return dflt;
    const n = pyFloat(v);
    if (n === null || Number.isNaN(n) || (check.min !== undefined && n < check.min) || (check.max !== undefined && n > check.max)) {
      const range = [check.min !== undefined ? `>= ${check.min}` : '', check.max !== undefined ? `<= ${check.max}` : ''].filter(Boolean).join(' and ');
      throw new ConfigError(`${this.where}: ${name} must be a number${range ? ' ' + range : ''}, not ${JSON.stringify(v)}`);
    }
    return n;
  }

  /** config_auto_int_value: 'auto' (or absent) gives the default. */
  autoInt(name: string, dflt: number): number {
    const v = this.conf[name];
    if (v === undefined || v.toLowerCase() === 'auto') return dflt;
    const n = pyInt(v);
    if (n === null) throw new ConfigError(`${this.where}: ${name} must be an integer or "auto", not ${JSON.stringify(v)}`);
    return n;
  }

  /** A comma-separated list (list_from_csv): items stripped, empties dropped. */
  list(name: string, dflt: string[] = []): string[] {
    const v = this.conf[name];
    if (v === undefined) return dflt;
    return v.split(',').map((s) => s.trim()).filter(Boolean);
  }
}
