// workerd (Cloudflare's Workers runtime, from the `workerd` npm package) for tests: bundles a
// worker with esbuild, .wasm imports kept as separate wasm modules as workerd and wrangler
// load them, writes a capnp config and serves it on 127.0.0.1 until stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The workerd binary, or undefined where the package or its platform binary is not installed. */
export async function workerdBinary(): Promise<string | undefined> {
  try {
    // The package exports the binary's path (it ships no types).
    const id = 'workerd';
    const mod = (await import(id)) as { default: string | { default: string } };
    const path = typeof mod.default === 'string' ? mod.default : mod.default.default;
    return path && existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

export interface BundleOptions {
  entry: string;
  /** Directory for the bundle and the wasm files it imports. */
  outDir: string;
  /** Resolution starts here (a consumer project, to resolve from its node_modules). */
  absWorkingDir?: string;
  /** Package conditions, as wrangler sets them for workerd. */
  conditions?: string[];
  alias?: Record<string, string>;
}

export interface Bundle {
  /** The bundled ES module, relative to outDir. */
  main: string;
  /** wasm modules the bundle imports, by module name (relative to outDir). */
  wasm: string[];
}

/** Bundles a worker; each .wasm import becomes `./<name>.wasm`, copied into outDir. */
export async function bundleWorker(opts: BundleOptions): Promise<Bundle> {
  const esbuild = await import('esbuild');
  mkdirSync(opts.outDir, { recursive: true });
  const wasm = new Set<string>();
  await esbuild.build({
    entryPoints: [opts.entry],
    absWorkingDir: opts.absWorkingDir,
    outfile: join(opts.outDir, 'worker.js'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: opts.conditions ?? ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    alias: opts.alias,
    logLevel: 'silent',
    plugins: [
      {
        name: 'wasm-modules',
        setup(build) {
          build.onResolve({ filter: /\.wasm$/ }, async (args) => {
            if (args.pluginData === 'wasm') return undefined;
            let file = resolve(args.resolveDir, args.path);
            if (!args.path.startsWith('.') && !args.path.startsWith('/')) {
              // A package's wasm (fragmend/wasm/...): ask esbuild where it lives.
              const r = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'wasm' });
              file = r.path;
            }
            const name = basename(file);
            copyFileSync(file, join(opts.outDir, name));
            wasm.add(name);
            return { path: `./${name}`, external: true };
          });
        },
      },
    ],
  });
  return { main: 'worker.js', wasm: [...wasm] };
}

/** A TCP port free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

export interface Workerd {
  url: string;
  /** What workerd printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Serves the bundle in outDir with workerd on 127.0.0.1, and resolves once it answers
 * (any response to GET /). Stop it with stop(), which ends that one process.
 */
export async function startWorkerd(binary: string, outDir: string, bundle: Bundle, compatibilityDate = '2025-01-01'): Promise<Workerd> {
  const modules = [
    `(name = "${bundle.main}", esModule = embed "${bundle.main}")`,
    ...bundle.wasm.map((w) => `(name = "${w}", wasm = embed "${w}")`),
  ];
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = join(outDir, 'config.capnp');
    writeFileSync(
      config,
      [
        'using Workerd = import "/workerd/workerd.capnp";',
        'const config :Workerd.Config = (',
        '  services = [ (name = "main", worker = .worker) ],',
        `  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],`,
        ');',
        'const worker :Workerd.Worker = (',
        `  modules = [ ${modules.join(', ')} ],`,
        `  compatibilityDate = "${compatibilityDate}",`,
        ');',
        '',
      ].join('\n'),
    );
    const child: ChildProcess = spawn(binary, ['serve', config], { cwd: outDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let exited = false;
    const exit = new Promise<void>((ok) => child.once('exit', () => ((exited = true), ok())));
    const stop = async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    };
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    while (!exited && Date.now() < deadline) {
      try {
        await fetch(url);
        return { url, output: () => out, stop };
      } catch {
        await sleep(50);
      }
    }
    await stop();
    // Someone took the port between freePort and workerd's bind: try another.
    if (attempt < 2 && /address already in use/i.test(out)) continue;
    throw new Error(`workerd did not start serving ${url}:\n${out}`);
  }
}
