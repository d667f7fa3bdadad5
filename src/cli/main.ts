// The `fragmend` command line. Each subsystem adds its command here. Only the module of the
// command being run is loaded: a daemon started by the minute (`reconstructor --once` from
// cron or a test harness) should not pay for the demo's or the codec tool's imports.
import type { Argv } from 'yargs';
import { plainReconstructorArgs } from './fast-args.js';

type Register = (y: Argv) => Argv;

const MODULES: Record<string, () => Promise<Register[]>> = {
  codec: async () => [(await import('./codec.js')).codecCommand],
  'get-nodes': async () => [(await import('./swift-tools.js')).swiftToolCommands],
  'suffix-hashes': async () => [(await import('./swift-tools.js')).swiftToolCommands],
  reconstructor: async () => [(await import('./reconstructor.js')).reconstructorCommand],
  demo: async () => [(await import('./demo.js')).demoCommand],
  'object-server': async () => [(await import('./object-server.js')).objectServerCommand],
};

async function allCommands(): Promise<Register[]> {
  const seen = new Set<Register>();
  for (const load of Object.values(MODULES)) for (const r of await load()) seen.add(r);
  return [...seen];
}

export async function main(args: string[]): Promise<void> {
  const plain = plainReconstructorArgs(args);
  if (plain) {
    process.exitCode = await (await import('./reconstructor.js')).runReconstructor(plain);
    return;
  }
  const { default: yargs } = await import('yargs');
  const first = args[0];
  const registers = first !== undefined && Object.hasOwn(MODULES, first) ? await MODULES[first]!() : await allCommands();
  let cli = yargs(args).scriptName('fragmend').strict().help().version(false);
  for (const r of registers) cli = r(cli);
  await cli
    .demandCommand(1, 'name a command (see --help)')
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
}
