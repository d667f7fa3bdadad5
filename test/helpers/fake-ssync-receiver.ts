// A receiver that speaks the start of SSYNC (200, missing_check wanting what was offered), then
// does what `afterPut` says once a PUT subrequest begins: for tests of the sender's faults.
// With `want`, it wants what that picks of the offered hashes; with `finish`, it answers the
// end of the updates as a receiver that took them all would.
import { createServer, type Server, type Socket } from 'node:net';

export async function fakeSsyncReceiver(afterPut: (sock: Socket) => void, opts: { wantAll?: boolean; want?: (offered: string[]) => string[]; finish?: boolean } = {}): Promise<{ port: number; server: Server }> {
  const server = createServer((sock) => {
    let seen = '';
    let stage = 0;
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      seen += d.toString('latin1');
      if (stage === 0 && seen.includes('\r\n\r\n')) {
        stage = 1;
        sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\r\n\r\n');
      }
      if (stage === 1 && seen.includes(':MISSING_CHECK: END')) {
        stage = 2;
        const offered = [...seen.matchAll(/([0-9a-f]{32}) /g)].map((m) => m[1]!);
        const picked = opts.want ? opts.want(offered) : opts.wantAll ? offered : offered.slice(0, 1);
        const wanted = picked.map((h) => `${h} dm\r\n`).join('');
        const msg = `:MISSING_CHECK: START\r\n${wanted}:MISSING_CHECK: END\r\n`;
        sock.write(`${msg.length.toString(16)}\r\n${msg}\r\n`);
      }
      if (stage === 2 && seen.includes('PUT /')) {
        stage = 3;
        afterPut(sock);
      }
      if (opts.finish && stage >= 2 && stage < 4 && seen.includes(':UPDATES: END')) {
        stage = 4;
        const msg = ':UPDATES: START\r\n:UPDATES: END\r\n';
        sock.end(`${msg.length.toString(16)}\r\n${msg}\r\n0\r\n\r\n`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server };
}
