import { describe, expect, it } from 'vitest';
import type { AccessPolicySpec } from '../api/index.js';
import { compileAccessPolicy } from './compile.js';
import type { AccessPolicySpecLike } from './types.js';

describe('AccessPolicySpecLike', () => {
  it('accepts the generated CRD type (a compile-time check; fails tsc if the shapes drift apart)', () => {
    const spec: AccessPolicySpec = {
      agentSelector: { names: ['support-bot'], matchLabels: { team: 'support' } },
      effect: 'Allow',
      rules: [
        {
          targets: ['jira'],
          tools: ['jira.*'],
          http: { methods: ['GET'], paths: ['/api/**'] },
          credential: { ttl: '5m', claims: { t: 'context.ticketId' } },
        },
      ],
    };
    const like: AccessPolicySpecLike = spec;
    expect(compileAccessPolicy({ namespace: 'agents', name: 'p', spec: like }).ok).toBe(true);
  });
});
