/**
 * The demo's optional step (WARDEN_DEMO_GATEWAY=1; `make test-demo` runs it): an agent pod that
 * opted out of injection calls the shared gateway (`warden gateway`, docs/gateway.md) over TLS
 * with its projected token for audience warden.dev/gateway — an MCP tool call, a denial, a
 * PostgreSQL query with the token as the password, and the 401 an unauthenticated MCP client gets.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import { pino } from 'pino';
import { runGateway } from '../../broker/gateway/main.js';
import {
  ANNOTATION_AGENT,
  ANNOTATION_INJECT,
  DEFAULT_BROKER_AUDIENCE,
  GATEWAY_AUDIENCE,
} from '../../core/constants.js';
import { createCertificateAuthority } from '../../core/x509.js';
import { freePort } from '../controlplane/controlplane.js';
import { tlsFetch } from '../gateway-fixture.js';

/** The gateway's service account, named to the controller with gatewayServiceAccounts. */
export const DEMO_GATEWAY_SERVICE_ACCOUNT = 'warden-gateway';

export async function gatewayStep(o: {
  core: CoreV1Api;
  namespace: string;
  wardenNamespace: string;
  issuer: string;
  dir: string;
  show: (text: string) => void;
  denial: (call: () => Promise<unknown>) => Promise<string>;
  cleanups: Array<() => Promise<unknown>>;
}): Promise<void> {
  const { core, show } = o;
  const pod = await core.createNamespacedPod({
    namespace: o.namespace,
    body: {
      metadata: {
        name: 'support-bot-serverless',
        annotations: { [ANNOTATION_AGENT]: 'support-bot', [ANNOTATION_INJECT]: 'false' },
      },
      spec: {
        serviceAccountName: 'support-bot',
        containers: [{ name: 'agent', image: 'ghcr.io/acme/support-bot:1.4' }],
      },
    },
  });
  show(
    `pod support-bot-serverless (${ANNOTATION_INJECT}: "false"): containers ${[
      ...(pod.spec?.initContainers ?? []),
      ...(pod.spec?.containers ?? []),
    ]
      .map((c) => c.name)
      .join(', ')} — no sidecar`,
  );

  await core.createNamespacedServiceAccount({
    namespace: o.wardenNamespace,
    body: { metadata: { name: DEMO_GATEWAY_SERVICE_ACCOUNT } },
  });
  const projected = async (namespace: string, sa: string, audience: string, bound: boolean) =>
    (
      await core.createNamespacedServiceAccountToken({
        namespace,
        name: sa,
        body: {
          spec: {
            audiences: [audience],
            expirationSeconds: 600,
            ...(bound
              ? {
                  boundObjectRef: {
                    apiVersion: 'v1',
                    kind: 'Pod',
                    name: 'support-bot-serverless',
                    uid: pod.metadata?.uid ?? '',
                  },
                }
              : {}),
          },
        },
      })
    ).status?.token ?? '';
  const gatewayTokenFile = join(o.dir, 'gateway-token');
  writeFileSync(
    gatewayTokenFile,
    await projected(o.wardenNamespace, DEMO_GATEWAY_SERVICE_ACCOUNT, DEFAULT_BROKER_AUDIENCE, false),
    { mode: 0o600 },
  );
  const ca = await createCertificateAuthority('warden-demo-gateway-ca', 3600_000);
  const leaf = await ca.issue({
    commonName: 'warden-gateway',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityMs: 3600_000,
    usage: 'server',
  });
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const gateway = await runGateway({
    authorityUrl: o.issuer,
    tokenFile: gatewayTokenFile,
    tlsCert: leaf.certPem,
    tlsKey: leaf.keyPem,
    listen: { host: '127.0.0.1', port },
    pgListen: { host: '127.0.0.1', port: 0 },
    healthPort: 0,
    healthHost: '127.0.0.1',
    publicUrl: url,
    authorizationServer: o.issuer,
    log: pino({ level: 'error' }),
  });
  o.cleanups.push(() => gateway.close());
  show(`gateway ${url} (TLS), PostgreSQL on 127.0.0.1:${gateway.ports.pg} (TLS only)`);

  const fetchTls = tlsFetch(ca.certPem);
  const anonymous = await fetchTls(`${url}/mcp/jira`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
  });
  await anonymous.arrayBuffer();
  show(
    `without a token: ${anonymous.status}, WWW-Authenticate: ${anonymous.headers.get('www-authenticate')}`,
  );

  const token = await projected(o.namespace, 'support-bot', GATEWAY_AUDIENCE, true);
  const client = new Client({ name: 'support-bot-serverless', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${url}/mcp/jira`), {
      fetch: fetchTls,
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  o.cleanups.push(() => client.close());
  const got = await client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-8' } });
  const text = (got.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? '').join(' ');
  show(`with its projected token (audience ${GATEWAY_AUDIENCE}): jira.get_issue → ${text}`);
  show(
    `jira.delete_issue → ${await o.denial(() => client.callTool({ name: 'jira.delete_issue', arguments: { key: 'SUP-8' } }))}`,
  );

  const sql = new pg.Client({
    host: '127.0.0.1',
    port: gateway.ports.pg,
    database: 'orders-db',
    user: 'support-bot',
    // The agent's token is the password; it is sent only inside TLS to a verified gateway.
    password: token,
    ssl: { ca: ca.certPem },
  });
  sql.on('error', () => {});
  await sql.connect();
  try {
    const r = await sql.query<{ who: string; orders: string }>(
      'SELECT current_user AS who, (SELECT count(*) FROM orders) AS orders',
    );
    show(
      `PostgreSQL session (password = the token, TLS with the gateway verified): ${r.rows[0]?.orders} orders, as ${r.rows[0]?.who}`,
    );
  } finally {
    await sql.end();
  }
}
