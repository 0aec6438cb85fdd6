import { describe, expect, it } from 'vitest';
import { kubectl } from './index.js';

describe('harness kubectl', () => {
  it('uses the kubectl built with the control plane (no version skew)', async () => {
    const res = await kubectl(['version', '-o', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const v = JSON.parse(res.stdout) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    expect(v.clientVersion.gitVersion).toBe(v.serverVersion.gitVersion);
  });
});
