// An optional Prometheus text endpoint (metrics_port, off by default): what the daemon has done
// since it started and in its current pass, for operators who scrape rather than read recon.
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { ObjectReconstructor } from './reconstructor.js';

export function metricsText(r: ObjectReconstructor): string {
  const s = r.stats;
  const t = r.totals;
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, values: Array<[string, number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of values) lines.push(`${name}${labels} ${v}`);
  };
  metric('fragmend_reconstructor_passes_total', 'counter', 'Reconstruction passes completed.', [['', t.passes]]);
  metric('fragmend_reconstructor_objects_rebuilt_total', 'counter', 'Fragment archives rebuilt and sent.', [['', t.objectsRebuilt]]);
  metric('fragmend_reconstructor_bytes_rebuilt_total', 'counter', 'Bytes of rebuilt fragment archives sent.', [['', t.bytesRebuilt]]);
  metric('fragmend_reconstructor_objects_reverted_total', 'counter', 'Handoff objects reverted and removed.', [['', t.objectsReverted]]);
  metric('fragmend_reconstructor_pass_partitions', 'gauge', 'Partitions processed in the current pass.', [['', s.reconstructionPartCount]]);
  metric('fragmend_reconstructor_pass_partitions_total', 'gauge', 'Partitions found in the current pass.', [['', s.partCount]]);
  metric('fragmend_reconstructor_handoffs_remaining', 'gauge', 'Handoff partitions not yet fully reverted in the current pass.', [['', s.handoffsRemaining]]);
  metric(
    'fragmend_reconstructor_pass_failures',
    'gauge',
    'Failures in the current pass, by cause.',
    Object.entries(s.failures).map(([cause, n]) => [`{cause="${cause}"}`, n]),
  );
  metric(
    'fragmend_reconstructor_pass_rebuilds_by_check',
    'gauge',
    "Archives rebuilt whole in the current pass, by how their sources were checked (fragmentMore, etag, server, off).",
    Object.entries(s.sourceChecks).map(([check, n]) => [`{check="${check}"}`, n]),
  );
  return lines.join('\n') + '\n';
}

export function startMetricsServer(r: ObjectReconstructor, ip: string, port: number): Promise<Server> {
  // node:http only when the listener is configured (off by default): every start would load it
  const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
      res.end(metricsText(r));
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve(server));
  });
}
