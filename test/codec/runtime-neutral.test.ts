// The codec entries import nothing a browser or an edge runtime lacks: walking the built import
// graph from each entry finds only the codec's own modules (and, for workerd, its .wasm files).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SPECIFIER = /(?:^|[;\s])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[;\s])import\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

function graph(entry: string): { files: string[]; specifiers: string[] } {
  const files: string[] = [];
  const specifiers: string[] = [];
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    if (files.includes(file)) continue;
    files.push(file);
    for (const m of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      specifiers.push(spec);
      if (spec.startsWith('.') && spec.endsWith('.js')) todo.push(resolve(dirname(file), spec));
    }
  }
  return { files, specifiers };
}

it.each(['index.js', 'core.js', 'workerd.js', 'worker.js'])('dist/codec/%s imports only relative modules', (entry) => {
  const path = join(root, 'dist', 'codec', entry);
  expect(existsSync(path), `${path} is built by npm run build`).toBe(true);
  const { files, specifiers } = graph(path);
  expect(files.length).toBeGreaterThan(3);
  expect(specifiers.filter((s) => !s.startsWith('.'))).toEqual([]);
  if (entry === 'workerd.js') expect(specifiers.filter((s) => s.endsWith('.wasm'))).toHaveLength(3);
});
