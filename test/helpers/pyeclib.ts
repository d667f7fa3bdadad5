// A long-lived real PyECLib process (scripts/pyeclib-oracle.py under Debian's /usr/bin/python3)
// for live cross-checks. Where PyECLib is not installed the live suites are skipped, except
// under CI=true, where its absence fails the run.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { INSTALL_HINT } from './install-hint.js';

export const PYTHON = '/usr/bin/python3';
const ORACLE = fileURLToPath(new URL('../../scripts/pyeclib-oracle.py', import.meta.url));
export const PYECLIB_INSTALL_HINT = INSTALL_HINT;

/** null when PyECLib with all four backends loads, else why not. */
export function pyeclibProblem(): string | null {
  const probe = spawnSync(
    PYTHON,
    [
      '-c',
      'from pyeclib.ec_iface import ECDriver\n' +
        "for t in ['liberasurecode_rs_vand','isa_l_rs_vand','isa_l_rs_cauchy','jerasure_rs_vand']: ECDriver(k=2,m=1,ec_type=t)",
    ],
    { encoding: 'utf8' },
  );
  if (probe.error) return `${PYTHON} cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `PyECLib with ISA-L and Jerasure is not usable: ${probe.stderr.trim().split('\n').pop()}`;
  return null;
}

export const IN_CI = process.env.CI === 'true';

/**
 * Whether the live suites run. Under CI a missing PyECLib throws (failing the suite);
 * elsewhere the suites are skipped with one line saying what to install.
 */
export function pyeclibEnabled(): boolean {
  const problem = pyeclibProblem();
  if (!problem) return true;
  if (IN_CI) throw new Error(`CI=true and the PyECLib cross-checks cannot run: ${problem}. Install: ${PYECLIB_INSTALL_HINT}`);
  console.warn(`[skipped] PyECLib cross-checks: ${problem}. To run them: ${PYECLIB_INSTALL_HINT}`);
  return false;
}

export interface OracleError {
  error: string;
  message: string;
}

export class PyECLibOracle {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly pending: Array<(line: string) => void> = [];

  constructor() {
    this.proc = spawn(PYTHON, [ORACLE], { stdio: ['pipe', 'pipe', 'pipe'] });
    const rl = createInterface({ input: this.proc.stdout });
    rl.on('line', (line) => this.pending.shift()?.(line));
    this.proc.stderr.on('data', (d) => process.stderr.write(d));
  }

  async call<T>(req: Record<string, unknown>): Promise<T> {
    const reply = JSON.parse(
      await new Promise<string>((resolve) => {
        this.pending.push(resolve);
        this.proc.stdin.write(JSON.stringify(req) + '\n');
      }),
    ) as { ok: boolean; result?: T; error?: string; message?: string };
    if (!reply.ok) throw Object.assign(new Error(`PyECLib ${reply.error}: ${reply.message}`), { pyError: reply.error });
    return reply.result as T;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.stdin.end();
    });
  }
}

export const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64');
export const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
