// Swift's statsd client: '<prefix>.<log_name>.<metric>:<value>|c' (or |ms), sampled as Swift
// samples, one UDP datagram per metric. Sends never block or fail the daemon.
import { createRequire } from 'node:module';
import type { Socket } from 'node:dgram';

export class StatsdClient {
  private readonly prefix: string;
  private socket: Socket | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
    tailPrefix: string,
    basePrefix = '',
    private readonly defaultSampleRate = 1,
    private readonly sampleRateFactor = 1,
  ) {
    this.prefix = (basePrefix ? `${basePrefix}.` : '') + (tailPrefix ? `${tailPrefix}.` : '');
  }

  private send(metric: string, value: string, sampleRate?: number): void {
    let rate = (sampleRate ?? this.defaultSampleRate) * this.sampleRateFactor;
    let msg = `${this.prefix}${metric}:${value}`;
    if (rate < 1) {
      if (Math.random() >= rate) return;
      msg += `|@${rate}`;
    } else rate = 1;
    try {
      // node:dgram when the first metric goes out: most nodes set no statsd host
      this.socket ??= (createRequire(import.meta.url)('node:dgram') as typeof import('node:dgram')).createSocket(this.host.includes(':') ? 'udp6' : 'udp4').unref();
      this.socket.send(msg, this.port, this.host, () => undefined);
    } catch {
      // statsd is best effort
    }
  }

  increment(metric: string, sampleRate?: number): void {
    this.send(metric, '1|c', sampleRate);
  }

  updateStats(metric: string, amount: number, sampleRate?: number): void {
    this.send(metric, `${amount}|c`, sampleRate);
  }

  timing(metric: string, ms: number, sampleRate?: number): void {
    this.send(metric, `${ms}|ms`, sampleRate);
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
  }
}

/** What the daemon reports to when statsd is off. */
export const noStatsd = { increment() {}, updateStats() {}, timing() {}, close() {} } as unknown as StatsdClient;
