// The `fragmend` command line. Each subsystem adds its command here.
import yargs from 'yargs';
import { codecCommand } from './codec.js';
import { demoCommand } from './demo.js';
import { objectServerCommand } from './object-server.js';
import { reconstructorCommand } from './reconstructor.js';
import { swiftToolCommands } from './swift-tools.js';

export async function main(args: string[]): Promise<void> {
  let cli = yargs(args).scriptName('fragmend').strict().help().version(false);
  cli = codecCommand(cli);
  cli = swiftToolCommands(cli);
  cli = reconstructorCommand(cli);
  cli = demoCommand(cli);
  cli = objectServerCommand(cli);
  await cli
    .demandCommand(1, 'name a command (see --help)')
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
}
