// `fragmend object-server <object-server.conf> [-v]`: an object server for the EC policies of a
// Swift node, reading the same config file as swift-object-server ([DEFAULT] + [app:object-server]).
import type { Argv } from 'yargs';
import { ObjectServer } from '../server/object-server.js';
import { dropPrivileges, modifyPriority } from '../swift/priority.js';

export async function runObjectServer(a: { conf: string; verbose: boolean; 'bind-port'?: number }): Promise<number> {
  const server = await ObjectServer.fromConfFile(a.conf, {
    ...(a.verbose ? { logLevel: 'DEBUG' } : {}),
    ...(a['bind-port'] !== undefined ? { bindPort: a['bind-port'] } : {}),
  });
  // as Swift's run_wsgi: the priority first, then the port is bound (a low one needs root), then
  // the process goes on as `user`
  modifyPriority(server.options, server.log);
  await server.start();
  try {
    dropPrivileges(server.options.user, server.log);
  } catch (e) {
    await server.stop();
    throw e;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      server.log.info({ signal }, `${signal} received: closing connections and exiting`);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      void server.stop().then(resolve);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
  return 0;
}

export function objectServerCommand(y: Argv): Argv {
  return y.command(
    'object-server <conf>',
    "Serve GET/HEAD/PUT/POST/DELETE/REPLICATE/SSYNC for this node's erasure-coded policies (swift-object-server)",
    (b) =>
      b
        .positional('conf', { type: 'string', demandOption: true, describe: 'object-server.conf (or a conf.d directory)' })
        .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log at debug level (every request)' })
        .option('bind-port', { type: 'number', describe: 'listen on this port instead of bind_port (0: any free port)' }),
    async (argv) => {
      process.exitCode = await runObjectServer(argv as never);
    },
  );
}
