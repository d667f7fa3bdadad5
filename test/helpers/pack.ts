// The package as a user gets it: `npm pack` of this repository (dist/ is built by pretest),
// installed into a fresh project in a temporary directory. Tests of the published shape
// (Node, workerd, bundlers) import fragmend from there, never from src/.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let packed: Promise<string> | undefined;

/**
 * Packs the repository with `npm pack --ignore-scripts` (no rebuild: dist/ and build/ must be
 * current, as pretest leaves them) into a temporary directory; resolves to the tarball's
 * absolute path. Packs once per test file (module instance) and reuses the tarball.
 */
export function packFragmend(): Promise<string> {
  return (packed ??= (async () => {
    for (const f of ['dist/codec/index.js', 'dist/codec/core.js', 'dist/codec/workerd.js', 'build/fragmend-simd.wasm']) {
      if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run npm run build first`);
    }
    const dest = mkdtempSync(join(tmpdir(), 'fragmend-pack-'));
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], {
      cwd: ROOT,
      maxBuffer: 64 << 20,
    });
    const [info] = JSON.parse(stdout) as Array<{ filename: string }>;
    return join(dest, info!.filename);
  })());
}

export interface FreshProjectOptions {
  /** More packages to install next to fragmend (names or name@range, from the npm registry). */
  packages?: string[];
  /** Extra package.json fields (scripts, say). */
  packageJson?: Record<string, unknown>;
}

/**
 * Makes `dir` (created if absent) an ESM project with the tarball installed as its
 * dependency `fragmend`, plus options.packages. Install scripts are skipped: fragmend's own
 * dependencies include fs-ext, whose native build (node-gyp, a C++ toolchain) only the daemon
 * needs, and none of the codec entries load it.
 */
export async function freshProject(dir: string, tarball: string, options: FreshProjectOptions = {}): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'fragmend-consumer', version: '0.0.0', private: true, type: 'module', ...options.packageJson }, null, 2) + '\n',
  );
  await run(
    'npm',
    ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, ...(options.packages ?? [])],
    { cwd: dir, maxBuffer: 64 << 20 },
  );
  return dir;
}

/** A fresh temporary directory for a consumer project. */
export const tempProjectDir = (prefix = 'fragmend-consumer-'): string => mkdtempSync(join(tmpdir(), prefix));
