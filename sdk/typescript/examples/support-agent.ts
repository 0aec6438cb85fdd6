/**
 * A short agent on the Warden SDK and the MCP TypeScript SDK: acting for its human, it reads a
 * Jira issue through Warden, tries a tool policy forbids and reports the typed denial, and reads
 * a ticket over the HTTP proxy. It holds no credential: Warden injects them upstream.
 *
 *   WARDEN_MCP_BASE=… WARDEN_HTTP_BASE=… USER_TOKEN=… npx tsx sdk/typescript/examples/support-agent.ts
 *
 * (next to a sidecar the webhook sets the WARDEN_* variables; for the shared gateway set
 * WARDEN_GATEWAY_URL and WARDEN_GATEWAY_TOKEN_FILE instead).
 */
import { pathToFileURL } from 'node:url';
import { Warden, WardenDeniedError, withRequestScope } from '../src/index.js';

export async function supportAgent(
  warden: Warden,
  userToken: string | undefined,
  say: (line: string) => void,
): Promise<void> {
  await withRequestScope({ userToken, context: { ticketId: 'SUP-42', purpose: 'triage' } }, async () => {
    const jira = await warden.mcpClient('jira', { name: 'support-agent', version: '1.0.0' });
    try {
      const { tools } = await jira.listTools();
      say(`tools Warden lets me see: ${tools.map((t) => t.name).join(', ')}`);
      const issue = await jira.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-42' } });
      const text = (issue.content as Array<{ type: string; text?: string }>)[0]?.text;
      say(`jira.get_issue → ${text}`);
      try {
        await jira.callTool({ name: 'jira.delete_issue', arguments: { key: 'SUP-42' } });
        say('jira.delete_issue → allowed (unexpected)');
      } catch (err) {
        if (!(err instanceof WardenDeniedError)) throw err;
        say(
          `jira.delete_issue → denied: reason=${err.reason} policy=${err.policy} rule=${err.rule} condition=${err.condition} transient=${err.transient}`,
        );
      }
    } finally {
      await jira.close();
    }
    const res = await warden.fetch('tickets', '/api/v1/tickets/SUP-42');
    say(`GET tickets/api/v1/tickets/SUP-42 → ${res.status} ${await res.text()}`);
    try {
      await warden.fetch('tickets', '/api/v1/tickets/SUP-42', { method: 'DELETE' });
    } catch (err) {
      if (!(err instanceof WardenDeniedError)) throw err;
      say(`DELETE tickets/api/v1/tickets/SUP-42 → denied: reason=${err.reason} (${err.message})`);
    }
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await supportAgent(Warden.fromEnv(), process.env.USER_TOKEN, (l) => console.log(l));
}
