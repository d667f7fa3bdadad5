// Runs snippets of real Swift's Python code (Debian's python3-swift under /usr/bin/python3) to
// judge our implementations. Where it is missing the suites that need it are skipped, except
// under CI=true, where its absence fails the run.
import { spawnSync } from 'node:child_process';
import { INSTALL_HINT } from './install-hint.js';

export const PYTHON = '/usr/bin/python3';
export const SWIFT_INSTALL_HINT = INSTALL_HINT;

export function swiftPythonProblem(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import swift.common.utils, swift.obj.diskfile'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} cannot run: ${r.error.message}`;
  if (r.status !== 0) return `Swift's Python code is not importable: ${r.stderr.trim().split('\n').pop()}`;
  return null;
}

export function swiftPythonEnabled(): boolean {
  const problem = swiftPythonProblem();
  if (!problem) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true and the real-Swift checks cannot run: ${problem}. Install: ${SWIFT_INSTALL_HINT}`);
  console.warn(`[skipped] real-Swift checks: ${problem}. To run them: ${SWIFT_INSTALL_HINT}`);
  return false;
}

/** Runs a Python script with JSON on stdin and returns its JSON stdout. */
export function runPython<T>(script: string, input: unknown): T {
  const r = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
