// Runs bench/reconstructor.bench.ts alone:
//   npx vitest run --config bench/vitest.config.ts [-- --json]
// vitest rejects options it does not know, so `--json` comes after `--`; it is read here, in the
// main process, and handed to the bench through the environment.
//
// stdout carries only the bench's table (or JSON document); vitest's own report is replaced by a
// reporter that sends the bench's progress lines and any failure to stderr, so `--json` output
// can be piped straight into another program.
import type { Reporter } from 'vitest/reporters';
import { defineConfig } from 'vitest/config';

const json = process.argv.includes('--json');

const toStderr: Reporter = {
  onUserConsoleLog(log) {
    process.stderr.write(log.content.endsWith('\n') ? log.content : `${log.content}\n`);
  },
  onTestRunEnd(modules, unhandledErrors) {
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const r = t.result();
        if (r.state !== 'failed') continue;
        process.stderr.write(`\nFAILED: ${t.fullName}\n`);
        for (const e of r.errors ?? []) process.stderr.write(`${e.stack ?? e.message}\n`);
      }
      for (const e of m.errors()) process.stderr.write(`\nERROR in ${m.moduleId}: ${e.stack ?? e.message}\n`);
    }
    for (const e of unhandledErrors) process.stderr.write(`\nUNHANDLED: ${e.stack ?? e.message}\n`);
  },
};

export default defineConfig({
  test: {
    include: ['bench/reconstructor.bench.ts'],
    pool: 'forks',
    fileParallelism: false,
    // a full run takes tens of minutes; the bench's own steps have their own timeouts
    testTimeout: 4 * 3600_000,
    hookTimeout: 4 * 3600_000,
    reporters: [toStderr],
    env: { FRAGMEND_BENCH_JSON: json ? '1' : process.env.FRAGMEND_BENCH_JSON ?? '' },
  },
});
