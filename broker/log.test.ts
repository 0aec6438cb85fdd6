import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createBrokerLogger } from './log.js';

describe('createBrokerLogger', () => {
  it('redacts every credential-bearing field', () => {
    const lines: string[] = [];
    const dest = new Writable({
      write(chunk, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createBrokerLogger({ level: 'info', destination: dest });
    log.info(
      {
        token: 'S1-secret',
        userToken: 'S2-secret',
        headers: {
          authorization: 'Bearer S3-secret',
          cookie: 'S4-secret',
          'x-warden-user-token': 'S5-secret',
        },
        req: { headers: { authorization: 'S6-secret' } },
        credential: { headers: { Authorization: 'S7-secret' } },
        upstream: { token: 'S8-secret', password: 'S9-secret' },
        target: 'jira',
      },
      'event',
    );
    const out = lines.join('');
    expect(out).not.toMatch(/S\d-secret/);
    expect(out).toContain('"target":"jira"');
    expect(out).toContain('[REDACTED]');
  });
});
