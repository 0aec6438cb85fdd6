import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  ANNOTATION_INJECT,
  BROKER_CONTAINER_NAME,
  BROKER_TOKEN_VOLUME,
  LABEL_AGENT,
} from '../core/constants.js';
import { checkPod, podServiceAccount, rejectionMessage, selectAgent } from './checks.js';
import { mutatePod } from './mutate.js';
import { agentIdentity, agentPod, TEST_BROKER } from './test-builders.js';

function withPod(edit: (p: V1Pod) => void): V1Pod {
  const p = agentPod();
  edit(p);
  return p;
}

describe('selectAgent', () => {
  it('reads the agent from the annotation', () => {
    expect(selectAgent(agentPod())).toEqual({ kind: 'agent', name: 'support-bot' });
  });
  it('uses the label when there is no annotation', () => {
    const pod = withPod((p) => {
      p.metadata!.annotations = {};
      p.metadata!.labels = { [LABEL_AGENT]: 'bot-2' };
    });
    expect(selectAgent(pod)).toEqual({ kind: 'agent', name: 'bot-2' });
  });
  it('ignores pods with neither', () => {
    expect(selectAgent({ metadata: { name: 'x' }, spec: { containers: [] } })).toEqual({ kind: 'none' });
  });
  it('honours the opt-out annotation', () => {
    const pod = withPod((p) => {
      p.metadata!.annotations![ANNOTATION_INJECT] = 'false';
    });
    expect(selectAgent(pod)).toEqual({ kind: 'opted-out' });
  });
  it('rejects a label that disagrees with the annotation', () => {
    const pod = withPod((p) => {
      p.metadata!.labels = { [LABEL_AGENT]: 'other' };
    });
    const sel = selectAgent(pod);
    expect(sel.kind).toBe('invalid');
    expect(sel.kind === 'invalid' && sel.problem.reason).toBe('AgentLabelMismatch');
  });
  it.each(['', 'Upper', 'has space', 'x'.repeat(254)])('rejects the invalid name %j', (name) => {
    const sel = selectAgent(agentPod({ agent: name }));
    expect(sel.kind === 'invalid' && sel.problem.reason).toBe('InvalidAgentName');
  });
});

describe('podServiceAccount', () => {
  it('defaults to "default"', () => {
    expect(podServiceAccount({ spec: { containers: [] } })).toBe('default');
  });
});

describe('checkPod', () => {
  const ns = 'team-a';

  it('accepts a well-formed agent pod', () => {
    expect(checkPod(agentPod(), ns, 'support-bot', agentIdentity())).toEqual([]);
  });

  it('accepts a pod it already injected (reinvocation)', () => {
    const injected = mutatePod(agentPod(), 'support-bot', agentIdentity(), TEST_BROKER);
    expect(checkPod(injected, ns, 'support-bot', agentIdentity())).toEqual([]);
  });

  it.each<[string, V1Pod, ReturnType<typeof agentIdentity> | undefined, string, RegExp]>([
    [
      'missing AgentIdentity',
      agentPod(),
      undefined,
      'AgentIdentityNotFound',
      /AgentIdentity "support-bot" not found in namespace "team-a"/,
    ],
    [
      'service account mismatch',
      agentPod({ sa: 'default' }),
      agentIdentity(),
      'ServiceAccountMismatch',
      /runs as service account "default" but AgentIdentity "support-bot" requires "support-bot"/,
    ],
    [
      'suspended agent',
      agentPod(),
      agentIdentity({ suspended: true, suspendReason: 'incident 42' }),
      'AgentSuspended',
      /the agent is suspended \(reason: incident 42\)/,
    ],
    [
      'hostNetwork',
      withPod((p) => {
        p.spec!.hostNetwork = true;
      }),
      agentIdentity(),
      'HostNetwork',
      /cannot use the host network/,
    ],
    [
      'no containers',
      withPod((p) => {
        p.spec!.containers = [];
      }),
      agentIdentity(),
      'NoContainers',
      /no containers/,
    ],
    [
      'a container named like the broker',
      withPod((p) => {
        p.spec!.containers.push({ name: BROKER_CONTAINER_NAME, image: 'evil' });
      }),
      agentIdentity(),
      'ReservedContainerName',
      /spec\.containers\[1\]\.name.*reserved/,
    ],
    [
      'an init container named like the broker on a pod not yet injected',
      withPod((p) => {
        p.spec!.initContainers = [{ name: BROKER_CONTAINER_NAME, image: 'evil' }];
      }),
      agentIdentity(),
      'ReservedContainerName',
      /spec\.initContainers\[0\]\.name/,
    ],
    [
      'a volume with the token volume name',
      withPod((p) => {
        p.spec!.volumes = [{ name: BROKER_TOKEN_VOLUME, emptyDir: {} }];
      }),
      agentIdentity(),
      'ReservedVolumeName',
      /spec\.volumes\[0\]\.name.*reserved/,
    ],
    [
      'an agent container mounting the token volume',
      withPod((p) => {
        p.spec!.containers[0]!.volumeMounts = [{ name: BROKER_TOKEN_VOLUME, mountPath: '/steal' }];
      }),
      agentIdentity(),
      'TokenVolumeMounted',
      /spec\.containers\[0\]\.volumeMounts\[0\]: container "agent" mounts volume "warden-broker-token".*only the injected Warden broker/,
    ],
    [
      'an agent container mounting its own token for the broker audience',
      withPod((p) => {
        p.spec!.volumes = [
          {
            name: 'mine',
            projected: { sources: [{ serviceAccountToken: { audience: 'warden.dev/broker', path: 't' } }] },
          },
        ];
        p.spec!.containers[0]!.volumeMounts = [{ name: 'mine', mountPath: '/t' }];
      }),
      agentIdentity(),
      'BrokerAudienceToken',
      /spec\.containers\[0\]\.volumeMounts\[0\]: container "agent" mounts volume "mine".*"warden\.dev\/broker"/,
    ],
    [
      "an init container mounting a token for the AgentIdentity's custom audience",
      withPod((p) => {
        p.spec!.volumes = [
          {
            name: 'mine',
            projected: { sources: [{ serviceAccountToken: { audience: 'custom-aud', path: 't' } }] },
          },
        ];
        p.spec!.initContainers = [
          { name: 'setup', image: 'x', volumeMounts: [{ name: 'mine', mountPath: '/t' }] },
        ];
      }),
      agentIdentity({ attestation: { audience: 'custom-aud' } }),
      'BrokerAudienceToken',
      /spec\.initContainers\[0\]\.volumeMounts\[0\]: container "setup" mounts volume "mine".*"custom-aud"/,
    ],
    [
      'an unmounted volume projecting the broker audience',
      withPod((p) => {
        p.spec!.volumes = [
          {
            name: 'spare',
            projected: { sources: [{ serviceAccountToken: { audience: 'warden.dev/broker', path: 't' } }] },
          },
        ];
      }),
      agentIdentity(),
      'BrokerAudienceToken',
      /spec\.volumes\[0\]\.projected\.sources\[0\]\.serviceAccountToken\.audience: volume "spare"/,
    ],
    [
      'a shared process namespace',
      withPod((p) => {
        p.spec!.shareProcessNamespace = true;
      }),
      agentIdentity(),
      'SharedProcessNamespace',
      /spec\.shareProcessNamespace: .*\/proc/,
    ],
    [
      'the host PID namespace',
      withPod((p) => {
        p.spec!.hostPID = true;
      }),
      agentIdentity(),
      'HostPID',
      /spec\.hostPID/,
    ],
    [
      'a missing required pod label',
      agentPod(),
      agentIdentity({ attestation: { requiredPodLabels: { tier: 'agents' } } }),
      'PodLabelMismatch',
      /metadata\.labels: pod label tier must be "agents"/,
    ],
    [
      'an image outside allowedImages',
      agentPod(),
      agentIdentity({ attestation: { allowedImages: ['ghcr.io/acme/*@sha256:*'] } }),
      'ImageNotAllowed',
      /ghcr\.io\/acme\/support-bot:1\.2\.3 matches none of spec\.attestation\.allowedImages/,
    ],
  ])('rejects %s', (_name, pod, agent, reason, message) => {
    const problems = checkPod(pod, ns, 'support-bot', agent);
    expect(problems.map((p) => p.reason)).toContain(reason);
    expect(rejectionMessage('p', 'support-bot', problems)).toMatch(message);
  });

  it('accepts a token volume for another audience (e.g. a workload-identity token for a cloud)', () => {
    const pod = withPod((p) => {
      p.spec!.volumes = [
        {
          name: 'cloud',
          projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', path: 't' } }] },
        },
      ];
      p.spec!.containers[0]!.volumeMounts = [{ name: 'cloud', mountPath: '/t' }];
    });
    expect(checkPod(pod, ns, 'support-bot', agentIdentity())).toEqual([]);
  });

  it('refuses a hand-written broker carrying the injected record, naming what differs', () => {
    const forged = mutatePod(agentPod(), 'support-bot', agentIdentity(), {
      ...TEST_BROKER,
      image: 'docker.io/evil/broker:1',
      authorityUrl: 'https://evil.example',
    });
    const expectation = { trustedImages: [TEST_BROKER.image], authorityUrl: TEST_BROKER.authorityUrl };
    const problems = checkPod(forged, ns, 'support-bot', agentIdentity(), expectation);
    expect(problems.map((p) => [p.reason, p.field])).toEqual([
      ['BrokerImageNotTrusted', 'spec.initContainers[0].image'],
      ['BrokerContainerAltered', 'spec.initContainers[0].args[2]'],
    ]);
    // ...while the webhook's own output passes on reinvocation.
    const ours = mutatePod(agentPod(), 'support-bot', agentIdentity(), TEST_BROKER);
    expect(checkPod(ours, ns, 'support-bot', agentIdentity(), expectation)).toEqual([]);
  });

  it('leaves the injected broker image out of the allowedImages check on reinvocation', () => {
    const agent = agentIdentity({ attestation: { allowedImages: ['ghcr.io/acme/**'] } });
    const injected = mutatePod(agentPod(), 'support-bot', agent, TEST_BROKER);
    expect(checkPod(injected, ns, 'support-bot', agent)).toEqual([]);
  });

  it('reports every problem at once, each with its field path', () => {
    const pod = withPod((p) => {
      p.spec!.hostNetwork = true;
      p.spec!.serviceAccountName = 'default';
    });
    const problems = checkPod(pod, ns, 'support-bot', agentIdentity({ suspended: true }));
    expect(problems.map((p) => p.field)).toEqual([
      'AgentIdentity team-a/support-bot spec.suspended',
      'spec.serviceAccountName',
      'spec.hostNetwork',
    ]);
  });
});
