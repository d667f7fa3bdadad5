#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).catch((err) => {
  console.error(`fragmend: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
