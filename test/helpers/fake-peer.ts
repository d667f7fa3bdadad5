// A peer that answers whole-answer exchanges (REPLICATE) with exactly the bytes a test wants: a
// plain socket server that hands each request head it reads to the test.
import { createServer, type Server, type Socket } from 'node:net';

export interface Fake {
  port: number;
  connections: number;
  requests: string[];
  sockets: Set<Socket>;
  close(): Promise<void>;
}

/** answer(sock, request, n) is called for each request head read off a connection */
export async function fake(answer: (sock: Socket, request: string, n: number) => void): Promise<Fake> {
  const f = { port: 0, connections: 0, requests: [] as string[], sockets: new Set<Socket>() } as Fake;
  const server: Server = createServer((sock) => {
    f.connections++;
    f.sockets.add(sock);
    sock.on('close', () => f.sockets.delete(sock));
    sock.on('error', () => undefined);
    let text = '';
    sock.on('data', (d) => {
      text += d.toString('latin1');
      let end: number;
      while ((end = text.indexOf('\r\n\r\n')) >= 0) {
        const req = text.slice(0, end);
        text = text.slice(end + 4);
        f.requests.push(req);
        answer(sock, req, f.requests.length);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  f.port = (server.address() as { port: number }).port;
  f.close = () =>
    new Promise<void>((r) => {
      for (const s of f.sockets) s.destroy();
      server.close(() => r());
    });
  return f;
}
