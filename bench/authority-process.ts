/**
 * The authority as its own process, for benchmarks that must see its RSS and CPU apart from the
 * clients driving it (bench/fanout.bench.ts). Forked with an IPC channel: it reads its kubeconfig
 * path, namespace and issuer from the environment, answers `{ port }` once listening, `{ usage }`
 * to 'usage' and closes then exits on 'stop' (so `--cpu-prof` gets written).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { createAuthority } from '../authority/index.js';
import { TEST_BROKER_IMAGE } from '../authority/int-fixtures.js';
import { AUTHORITY_PROCESS_ENV, type AuthorityUsage } from './lib.js';

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`authority-process: environment variable ${name} is not set`);
  return v;
}

async function main(): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(required(AUTHORITY_PROCESS_ENV.kubeconfig));
  const namespace = required(AUTHORITY_PROCESS_ENV.namespace);
  const authority = await createAuthority({
    trustedBrokerImages: [TEST_BROKER_IMAGE],
    kubeConfig: kc,
    namespace,
    watchNamespace: namespace,
    issuer: required(AUTHORITY_PROCESS_ENV.issuer),
    log: pino({ level: 'silent' }),
    audit: { record: () => {} },
  });
  const port = await authority.listen(0, '127.0.0.1');
  process.on('message', (m: unknown) => {
    if (m === 'usage') {
      const cpu = process.cpuUsage();
      const usage: AuthorityUsage = {
        rss: process.memoryUsage().rss,
        maxRss: process.resourceUsage().maxRSS * 1024,
        cpuMicros: cpu.user + cpu.system,
      };
      process.send?.({ usage });
    } else if (m === 'stop') {
      void authority.close().finally(() => process.exit(0));
    }
  });
  // The parent gone (a crashed benchmark): do not linger holding ports.
  process.on('disconnect', () => process.exit(0));
  process.send?.({ port });
}

main().catch((err: unknown) => {
  console.error('authority-process:', err);
  process.exit(1);
});
