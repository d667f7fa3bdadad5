#!/usr/bin/env node
// Serves the browser page (web/) with the built codec on 127.0.0.1, no bundler needed: the
// page's import map points `fragmend/codec` at dist/codec/, served from here (the codec
// imports nothing else). Run `npm run build` first, then `npm run web`
// (options: --port N, default 8080, 0 for any free port; --host ADDR, default 127.0.0.1).
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** URL prefix → directory on disk. Anything else is looked up in web/. */
const MOUNTS = [
  ['/dist/', join(root, 'dist')],
  ['/build/', join(root, 'build')],
  ['/', join(root, 'web')],
];

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** The file a URL path names, or null when it names none under the mounts. */
function resolvePath(urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (path.includes('\0')) return null;
  for (const [prefix, dir] of MOUNTS) {
    if (!path.startsWith(prefix)) continue;
    const rel = normalize(path.slice(prefix.length));
    if (rel.startsWith('..') || rel.startsWith(sep)) return null;
    let file = join(dir, rel);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (existsSync(file) && statSync(file).isFile()) return file;
  }
  return null;
}

/**
 * Starts the server; resolves to its URL and a close function. The codec must be built
 * (dist/codec/index.js), else the page cannot load it.
 */
export function startWebServer({ port = 8080, host = '127.0.0.1' } = {}) {
  if (!existsSync(join(root, 'dist/codec/index.js'))) {
    return Promise.reject(new Error('dist/codec/index.js is missing: run `npm run build` first'));
  }
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const file = resolvePath(url.pathname);
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: ${url.pathname}\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({
        url: `http://${shown}:${addr.port}/`,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const port = Number(arg('port') ?? process.env.PORT ?? 8080);
  const host = arg('host') ?? '127.0.0.1';
  startWebServer({ port, host }).then(
    ({ url, close }) => {
      console.log(`fragmend page: ${url}`);
      console.log('Drop the fragment archives (.data files) of one Swift EC object on it. Ctrl-C stops.');
      const stop = () => close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (e) => {
      console.error(`fragmend page: ${e.message}`);
      process.exit(1);
    },
  );
}
