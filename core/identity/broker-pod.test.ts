import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { brokerTokenExposures, injectedBrokerProblems, withoutBroker } from './broker-pod.js';

const IMAGE = 'ghcr.io/warden-dev/warden@sha256:1111';
const AUTHORITY = 'https://warden.warden-system.svc:8443';
const expectation = { trustedImages: [IMAGE], authorityUrl: AUTHORITY };
const AUD = 'warden.dev/broker';

/** The broker the webhook injects (webhook/broker-sidecar.ts), written out by hand. */
const broker = (): V1Container => ({
  name: 'warden-broker',
  image: IMAGE,
  restartPolicy: 'Always',
  args: [
    'broker',
    '--token-file=/var/run/secrets/warden.dev/broker/token',
    `--authority-url=${AUTHORITY}`,
    '--authority-ca=/var/run/secrets/warden.dev/broker/authority-ca.crt',
    '--mcp-listen=127.0.0.1:15100',
    '--http-listen=127.0.0.1:15101',
    '--pg-listen=127.0.0.1:15432',
    '--health-listen=0.0.0.0:15102',
  ],
  env: [{ name: 'NODE_OPTIONS', value: '--max-semi-space-size=2 --max-old-space-size=64' }],
  startupProbe: { httpGet: { path: '/readyz', port: 'warden-health' } },
  volumeMounts: [
    { name: 'warden-broker-token', mountPath: '/var/run/secrets/warden.dev/broker', readOnly: true },
  ],
});
const tokenVolume = (): V1Volume => ({
  name: 'warden-broker-token',
  projected: {
    sources: [
      { serviceAccountToken: { audience: AUD, expirationSeconds: 3600, path: 'token' } },
      {
        downwardAPI: {
          items: [
            {
              path: 'authority-ca.crt',
              fieldRef: { fieldPath: "metadata.annotations['warden.dev/authority-ca']" },
            },
          ],
        },
      },
    ],
  },
});
const record = (o: Record<string, unknown> = {}) =>
  JSON.stringify({
    version: '0.1.0',
    agent: 'bot',
    brokerImage: IMAGE,
    container: 'warden-broker',
    volume: 'warden-broker-token',
    audience: AUD,
    ...o,
  });
const injectedPod = (): V1Pod => ({
  metadata: {
    name: 'bot-0',
    annotations: { 'warden.dev/agent': 'bot', 'warden.dev/injected': record() },
  },
  spec: {
    serviceAccountName: 'bot',
    initContainers: [broker()],
    containers: [{ name: 'agent', image: 'ghcr.io/acme/agent:1' }],
    volumes: [tokenVolume()],
  },
});
/** The injected pod with one change. */
const change = (f: (p: V1Pod & { spec: NonNullable<V1Pod['spec']> }) => void): V1Pod => {
  const p = injectedPod() as V1Pod & { spec: NonNullable<V1Pod['spec']> };
  f(p);
  return p;
};
const brokerOf = (p: V1Pod) => p.spec?.initContainers?.[0] as V1Container;
const SPOOL = 'warden-broker-audit-spool';
const SPOOL_DIR = '/var/run/warden.dev/audit-spool';
/** The injected pod with the audit spool (webhook/broker-sidecar.ts), and one change. */
const withSpool = (f: (p: V1Pod & { spec: NonNullable<V1Pod['spec']> }) => void = () => {}): V1Pod =>
  change((p) => {
    const b = brokerOf(p);
    b.args?.push(`--audit-spool=${SPOOL_DIR}`, '--audit-spool-max-bytes=16777216');
    b.volumeMounts?.push({ name: SPOOL, mountPath: SPOOL_DIR });
    p.spec.volumes?.push({ name: SPOOL, emptyDir: { sizeLimit: '18Mi' } });
    f(p);
  });

describe('injectedBrokerProblems', () => {
  it('accepts the pod as the webhook injects it', () => {
    expect(injectedBrokerProblems(injectedPod(), 'bot', AUD, expectation)).toEqual([]);
  });

  it('accepts the audit spool as the webhook injects it (and pods injected before it, without one)', () => {
    expect(injectedBrokerProblems(withSpool(), 'bot', AUD, expectation)).toEqual([]);
  });

  it.each([
    [
      'a spool volume that is not an emptyDir (shared with the node)',
      withSpool((p) => {
        p.spec.volumes![1] = { name: SPOOL, hostPath: { path: '/var/tmp' } };
      }),
      'spec.volumes[1]',
    ],
    [
      'another container mounting the spool',
      withSpool((p) => {
        p.spec.containers[0]!.volumeMounts = [{ name: SPOOL, mountPath: '/spool', readOnly: true }];
      }),
      'spec.containers[0].volumeMounts[0]',
    ],
  ])('refuses %s (SpoolVolumeAltered)', (_name, pod, field) => {
    const problems = injectedBrokerProblems(pod, 'bot', AUD, expectation);
    expect(problems.map((p) => [p.reason, p.field])).toContainEqual(['SpoolVolumeAltered', field]);
  });

  it.each([
    [
      'mounted elsewhere',
      withSpool((p) => (brokerOf(p).volumeMounts![1]!.mountPath = '/usr/lib/node')),
      '.volumeMounts',
    ],
    [
      'pointed at another directory',
      withSpool((p) => {
        brokerOf(p).args = brokerOf(p).args!.map((a) => a.replace(SPOOL_DIR, '/tmp'));
      }),
      '.args[8]',
    ],
  ])('refuses a broker whose spool is %s (BrokerContainerAltered)', (_name, pod, field) => {
    const problems = injectedBrokerProblems(pod, 'bot', AUD, expectation);
    expect(problems.map((p) => [p.reason, p.field])).toContainEqual([
      'BrokerContainerAltered',
      `spec.initContainers[0]${field}`,
    ]);
  });

  it('accepts differences that cannot run code or move the token (ports, resources, probes over HTTP)', () => {
    const p = change((p) => {
      const b = brokerOf(p);
      b.args = b.args?.map((a) => a.replace('15100', '25100'));
      b.resources = { limits: { memory: '1Gi' } };
      b.imagePullPolicy = 'Always';
      b.env = [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=96' }];
      // What the ServiceAccount admission plugin adds to every container of a pod that automounts.
      b.volumeMounts?.push({
        name: 'kube-api-access-x7k2p',
        mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
        readOnly: true,
      });
    });
    expect(injectedBrokerProblems(p, 'bot', AUD, expectation)).toEqual([]);
  });

  const cases: Array<[string, V1Pod, string, string]> = [
    [
      'an opted-out pod',
      change((p) => {
        p.metadata!.annotations!['warden.dev/inject'] = 'false';
      }),
      'OptedOut',
      'metadata.annotations[warden.dev/inject]',
    ],
    [
      'a pod without the injected record',
      change((p) => {
        delete p.metadata!.annotations!['warden.dev/injected'];
      }),
      'NotInjected',
      'metadata.annotations[warden.dev/injected]',
    ],
    [
      'a record that is not JSON',
      change((p) => {
        p.metadata!.annotations!['warden.dev/injected'] = 'yes';
      }),
      'InjectedRecordMismatch',
      'metadata.annotations[warden.dev/injected]',
    ],
    [
      'a record for another agent',
      change((p) => {
        p.metadata!.annotations!['warden.dev/injected'] = record({ agent: 'admin-bot' });
      }),
      'InjectedRecordMismatch',
      'metadata.annotations[warden.dev/injected].agent',
    ],
    [
      'a record for another audience',
      change((p) => {
        p.metadata!.annotations!['warden.dev/injected'] = record({ audience: 'x' });
      }),
      'InjectedRecordMismatch',
      'metadata.annotations[warden.dev/injected].audience',
    ],
    [
      'the host network',
      change((p) => {
        p.spec.hostNetwork = true;
      }),
      'HostNetwork',
      'spec.hostNetwork',
    ],
    [
      'no broker container',
      change((p) => {
        p.spec.initContainers = [];
      }),
      'BrokerMissing',
      'spec.initContainers',
    ],
    [
      'the broker as a regular container',
      change((p) => {
        p.spec.initContainers = [];
        p.spec.containers.push(broker());
      }),
      'BrokerMissing',
      'spec.initContainers',
    ],
    [
      'an untrusted image',
      change((p) => {
        brokerOf(p).image = 'ghcr.io/warden-dev/warden:latest';
      }),
      'BrokerImageNotTrusted',
      'spec.initContainers[0].image',
    ],
    [
      'not a native sidecar',
      change((p) => {
        delete brokerOf(p).restartPolicy;
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].restartPolicy',
    ],
    [
      'a command override',
      change((p) => {
        brokerOf(p).command = ['/bin/sh'];
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].command',
    ],
    [
      'a working directory',
      change((p) => {
        brokerOf(p).workingDir = '/tmp';
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].workingDir',
    ],
    [
      'envFrom',
      change((p) => {
        brokerOf(p).envFrom = [{ configMapRef: { name: 'x' } }];
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].envFrom',
    ],
    [
      'NODE_OPTIONS loading code',
      change((p) => {
        brokerOf(p).env = [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=64 --require=/tmp/x.js' }];
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].env[0]',
    ],
    [
      'NODE_OPTIONS from a ConfigMap',
      change((p) => {
        brokerOf(p).env = [{ name: 'NODE_OPTIONS', valueFrom: { configMapKeyRef: { name: 'x', key: 'y' } } }];
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].env[0]',
    ],
    [
      'another env var',
      change((p) => {
        brokerOf(p).env?.push({ name: 'NODE_DEBUG', value: 'http' });
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].env[1]',
    ],
    [
      'a lifecycle hook',
      change((p) => {
        brokerOf(p).lifecycle = { postStart: { exec: { command: ['sh', '-c', 'cat token'] } } };
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].lifecycle',
    ],
    [
      'an exec probe',
      change((p) => {
        brokerOf(p).livenessProbe = { exec: { command: ['sh', '-c', 'cat token'] } };
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].livenessProbe.exec',
    ],
    [
      'an extra volume mount (code planted over the image)',
      change((p) => {
        brokerOf(p).volumeMounts?.push({ name: 'planted', mountPath: '/app/dist' });
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].volumeMounts',
    ],
    [
      'a second mount at the API-access path',
      change((p) => {
        for (const n of ['a', 'b'])
          brokerOf(p).volumeMounts?.push({
            name: n,
            mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
            readOnly: true,
          });
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].volumeMounts',
    ],
    [
      'the token volume mounted twice',
      change((p) => {
        brokerOf(p).volumeMounts?.push({
          name: 'warden-broker-token',
          mountPath: '/app/dist',
          readOnly: true,
        });
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].volumeMounts',
    ],
    [
      'a writable token mount',
      change((p) => {
        brokerOf(p).volumeMounts![0]!.readOnly = false;
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].volumeMounts',
    ],
    [
      'not running `warden broker`',
      change((p) => {
        brokerOf(p).args![0] = 'controller';
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].args[0]',
    ],
    [
      'the token sent to another authority',
      change((p) => {
        brokerOf(p).args![2] = '--authority-url=https://evil.example';
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].args[2]',
    ],
    [
      'another token file',
      change((p) => {
        brokerOf(p).args![1] = '--token-file=/etc/passwd';
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].args[1]',
    ],
    [
      'a flag Warden does not pass',
      change((p) => {
        brokerOf(p).args!.push('--log-level=trace');
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].args[8]',
    ],
    [
      'a flag passed twice',
      change((p) => {
        brokerOf(p).args!.push('--authority-url=https://evil.example');
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].args[8]',
    ],
    [
      'a flag without =',
      change((p) => {
        brokerOf(p).args!.push('--authority-url', 'https://evil.example');
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].args[8]',
    ],
    [
      'the MCP listener off loopback',
      change((p) => {
        brokerOf(p).args![4] = '--mcp-listen=0.0.0.0:15100';
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].args[4]',
    ],
    [
      'no --authority-url',
      change((p) => {
        brokerOf(p).args!.splice(2, 1);
      }),
      'BrokerContainerAltered',
      'spec.initContainers[0].args[7]',
    ],
    [
      'no token volume',
      change((p) => {
        p.spec.volumes = [];
      }),
      'TokenVolumeAltered',
      'spec.volumes',
    ],
    [
      'a token volume that is an emptyDir',
      change((p) => {
        p.spec.volumes = [{ name: 'warden-broker-token', emptyDir: {} }];
      }),
      'TokenVolumeAltered',
      'spec.volumes[0]',
    ],
    [
      'a token volume for another audience',
      change((p) => {
        p.spec.volumes![0]!.projected!.sources![0]!.serviceAccountToken!.audience = 'other';
      }),
      'TokenVolumeAltered',
      'spec.volumes[0].projected.sources',
    ],
    [
      'a token volume projecting a Secret too',
      change((p) => {
        p.spec.volumes![0]!.projected!.sources!.push({ secret: { name: 'x' } });
      }),
      'TokenVolumeAltered',
      'spec.volumes[0].projected.sources[2]',
    ],
    [
      'a token volume projecting other annotations',
      change((p) => {
        p.spec.volumes![0]!.projected!.sources![1]!.downwardAPI!.items![0]!.fieldRef!.fieldPath =
          'metadata.annotations';
      }),
      'TokenVolumeAltered',
      'spec.volumes[0].projected.sources[1]',
    ],
  ];
  it.each(cases)('refuses %s', (_name, pod, reason, field) => {
    const problems = injectedBrokerProblems(pod, 'bot', AUD, expectation);
    expect(problems.map((p) => [p.reason, p.field])).toContainEqual([reason, field]);
    for (const p of problems) expect(p.message).toMatch(/;|:/);
  });
});

describe('brokerTokenExposures', () => {
  it('finds nothing in the injected pod', () => {
    expect(brokerTokenExposures(injectedPod(), [AUD])).toEqual([]);
  });

  const mount = { name: 'warden-broker-token', mountPath: '/t' };
  const own: V1Volume = {
    name: 'own',
    projected: {
      sources: [{ configMap: { name: 'c' } }, { serviceAccountToken: { audience: AUD, path: 't' } }],
    },
  };
  const cases: Array<[string, V1Pod, string, string, RegExp]> = [
    [
      'an agent container mounting the token volume',
      change((p) => {
        p.spec.containers[0]!.volumeMounts = [mount];
      }),
      'TokenVolumeMounted',
      'spec.containers[0].volumeMounts[0]',
      /container "agent" mounts volume "warden-broker-token"/,
    ],
    [
      'an init container mounting the token volume',
      change((p) => {
        p.spec.initContainers!.push({ name: 'setup', image: 'x', volumeMounts: [mount] });
      }),
      'TokenVolumeMounted',
      'spec.initContainers[1].volumeMounts[0]',
      /container "setup"/,
    ],
    [
      'an ephemeral container mounting the token volume',
      change((p) => {
        p.spec.ephemeralContainers = [{ name: 'debug', image: 'x', volumeMounts: [mount] }];
      }),
      'TokenVolumeMounted',
      'spec.ephemeralContainers[0].volumeMounts[0]',
      /container "debug"/,
    ],
    [
      'an agent container mounting its own broker-audience token',
      change((p) => {
        p.spec.volumes!.push(own);
        p.spec.containers[0]!.volumeMounts = [{ name: 'own', mountPath: '/t' }];
      }),
      'BrokerAudienceToken',
      'spec.containers[0].volumeMounts[0]',
      /container "agent" mounts volume "own".*"warden\.dev\/broker"/,
    ],
    [
      'a broker-audience volume nobody mounts',
      change((p) => {
        p.spec.volumes!.push(own);
      }),
      'BrokerAudienceToken',
      'spec.volumes[1].projected.sources[1].serviceAccountToken.audience',
      /volume "own"/,
    ],
    [
      'an ephemeral container targeting the broker',
      change((p) => {
        p.spec.ephemeralContainers = [{ name: 'debug', image: 'x', targetContainerName: 'warden-broker' }];
      }),
      'EphemeralTargetsBroker',
      'spec.ephemeralContainers[0].targetContainerName',
      /ephemeral container "debug"/,
    ],
    [
      'a shared process namespace',
      change((p) => {
        p.spec.shareProcessNamespace = true;
      }),
      'SharedProcessNamespace',
      'spec.shareProcessNamespace',
      /\/proc/,
    ],
    [
      'the host PID namespace',
      change((p) => {
        p.spec.hostPID = true;
      }),
      'HostPID',
      'spec.hostPID',
      /\/proc/,
    ],
  ];
  it.each(cases)('finds %s', (_name, pod, reason, field, message) => {
    const problems = brokerTokenExposures(pod, [AUD]);
    expect(problems.map((p) => [p.reason, p.field])).toEqual([[reason, field]]);
    expect(problems[0]?.message).toMatch(message);
  });

  it('ignores tokens for other audiences and ephemeral containers targeting the agent', () => {
    const p = change((p) => {
      p.spec.volumes!.push({
        name: 'cloud',
        projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', path: 't' } }] },
      });
      p.spec.containers[0]!.volumeMounts = [{ name: 'cloud', mountPath: '/t' }];
      p.spec.ephemeralContainers = [{ name: 'debug', image: 'x', targetContainerName: 'agent' }];
    });
    expect(brokerTokenExposures(p, [AUD])).toEqual([]);
  });
});

describe('withoutBroker', () => {
  it('drops only the broker container', () => {
    const p = change((p) => {
      p.spec.initContainers!.push({ name: 'setup', image: 'x' });
    });
    expect(withoutBroker(p).spec?.initContainers?.map((c) => c.name)).toEqual(['setup']);
    expect(p.spec?.initContainers).toHaveLength(2);
  });
});
