#!/usr/bin/env node
// The command line: the bundled build (one module, quick to start) made by `npm run build`,
// or, in a tree where only tsc has run, the modules under dist/cli.
let mod;
try {
  mod = await import('../dist/fragmend-cli.mjs');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !/Cannot find module .*fragmend-cli\.mjs/.test(String(err.message))) throw err;
  mod = await import('../dist/cli/main.js');
}

mod.main(process.argv.slice(2)).catch((err) => {
  console.error(`fragmend: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
