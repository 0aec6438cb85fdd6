import { describe, expect, it } from 'vitest';
import { type AgentIdentityCache, cachedLookup } from './lookup.js';
import { agentIdentity } from './test-builders.js';
import type { AgentIdentityView } from './types.js';

function cache(synced: boolean, items: AgentIdentityView[]): AgentIdentityCache {
  return {
    hasSynced: () => synced,
    get: (name, ns) => items.find((a) => a.metadata.name === name && a.metadata.namespace === ns),
  };
}

describe('cachedLookup', () => {
  const cached = agentIdentity({ serviceAccountName: 'from-cache' });
  const fetched = agentIdentity({ serviceAccountName: 'from-api' });
  const calls: string[] = [];
  const fallback = async (ns: string, name: string) => {
    calls.push(`${ns}/${name}`);
    return name === 'support-bot' ? fetched : undefined;
  };

  it('answers from a synced cache without calling the API', async () => {
    calls.length = 0;
    const got = await cachedLookup(cache(true, [cached]), fallback)('team-a', 'support-bot');
    expect(got?.spec.serviceAccountName).toBe('from-cache');
    expect(calls).toEqual([]);
  });

  it('falls back to the API on a cache miss (an AgentIdentity created a moment ago)', async () => {
    calls.length = 0;
    const got = await cachedLookup(cache(true, []), fallback)('team-a', 'support-bot');
    expect(got?.spec.serviceAccountName).toBe('from-api');
    expect(calls).toEqual(['team-a/support-bot']);
  });

  it('falls back to the API while the cache has not synced', async () => {
    const got = await cachedLookup(cache(false, [cached]), fallback)('team-a', 'support-bot');
    expect(got?.spec.serviceAccountName).toBe('from-api');
  });

  it('reports a missing AgentIdentity as undefined', async () => {
    expect(await cachedLookup(cache(true, []), fallback)('team-a', 'nobody')).toBeUndefined();
  });
});
