import { describe, expect, it } from 'vitest';
import type { PodLike } from '../core/identity/agent.js';
import { watchedPodAnswers } from './kube.js';

const pod = (uid: string, extra: Partial<NonNullable<PodLike['metadata']>> = {}): PodLike => ({
  metadata: { name: 'bot-1', namespace: 'team-a', uid, ...extra },
  spec: { serviceAccountName: 'bot-sa' },
});

describe('watchedPodAnswers: when the watched copy may answer for a token without a live read', () => {
  it('answers for the exact pod the token is bound to while the watch is connected', () => {
    expect(watchedPodAnswers(pod('uid-a'), 'uid-a', true)).toBe(true);
  });

  it('reads live on a miss (a pod created a moment ago, or one without the agent label)', () => {
    expect(watchedPodAnswers(undefined, 'uid-a', true)).toBe(false);
  });

  it('reads live when the watched pod has another UID (the name was reused: old or new pod cached)', () => {
    expect(watchedPodAnswers(pod('uid-b'), 'uid-a', true)).toBe(false);
  });

  it('reads live for a terminating pod, so its final removal is seen at once', () => {
    expect(
      watchedPodAnswers(pod('uid-a', { deletionTimestamp: '2026-12-04T23:00:00Z' }), 'uid-a', true),
    ).toBe(false);
  });

  it('reads live while the watch is reconnecting (the cache may be behind by the backoff)', () => {
    expect(watchedPodAnswers(pod('uid-a'), 'uid-a', false)).toBe(false);
  });

  it.each([
    ['no UID', undefined],
    ['an empty UID', ''],
  ])('reads live when the caller names %s (nothing to compare the cached pod with)', (_, uid) => {
    expect(watchedPodAnswers(pod('uid-a'), uid, true)).toBe(false);
  });

  it('reads live when the cached pod carries no UID', () => {
    expect(watchedPodAnswers({ metadata: { name: 'bot-1' } }, 'uid-a', true)).toBe(false);
  });
});
