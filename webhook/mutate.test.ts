import { describe, expect, it } from 'vitest';
import {
  ANNOTATION_INJECTED,
  BROKER_CONTAINER_NAME,
  BROKER_TOKEN_DIR,
  BROKER_TOKEN_VOLUME,
  ENV_HTTP_BASE,
  ENV_MCP_BASE,
  ENV_PG_BASE,
  ENV_USER_TOKEN_HEADER,
  LABEL_AGENT,
} from '../core/constants.js';
import { BROKER_NODE_OPTIONS } from './broker-sidecar.js';
import { mutatePod } from './mutate.js';
import { diff } from './patch.js';
import { agentIdentity, agentPod, TEST_BROKER } from './test-builders.js';

function mutated(pod = agentPod(), agent = agentIdentity()) {
  return mutatePod(pod, 'support-bot', agent, TEST_BROKER);
}

describe('mutatePod', () => {
  it('adds the broker as the first init container, as a native sidecar', () => {
    const pod = agentPod();
    pod.spec!.initContainers = [{ name: 'migrate', image: 'busybox' }];
    const out = mutated(pod);
    const broker = out.spec?.initContainers?.[0];
    expect(broker?.name).toBe(BROKER_CONTAINER_NAME);
    expect(broker?.restartPolicy).toBe('Always');
    expect(broker?.image).toBe(TEST_BROKER.image);
    expect(out.spec?.initContainers?.[1]?.name).toBe('migrate');
  });

  it('gives the broker a startup probe on /readyz, resources and a locked-down security context', () => {
    const broker = mutated().spec?.initContainers?.[0];
    expect(broker?.startupProbe?.httpGet?.path).toBe('/readyz');
    expect(broker?.startupProbe?.httpGet?.port).toBe(broker?.ports?.[0]?.name);
    expect(broker?.ports?.[0]?.containerPort).toBe(TEST_BROKER.healthPort);
    expect(broker?.resources?.requests).toEqual(TEST_BROKER.resources.requests);
    expect(broker?.resources?.limits).toEqual(TEST_BROKER.resources.limits);
    expect(broker?.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('gives the broker the authority CA bundle as a projected file when configured, and nothing otherwise', () => {
    const plain = mutated();
    expect(plain.spec?.initContainers?.[0]?.args?.some((a) => a.startsWith('--authority-ca'))).toBe(false);
    expect(plain.spec?.volumes?.[0]?.projected?.sources).toHaveLength(1);
    expect(plain.metadata?.annotations?.['warden.dev/authority-ca']).toBeUndefined();

    const pem = '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n';
    const config = { ...TEST_BROKER, authorityCaBundlePem: pem };
    const out = mutatePod(agentPod(), 'support-bot', agentIdentity(), config);
    expect(out.metadata?.annotations?.['warden.dev/authority-ca']).toBe(pem);
    expect(out.spec?.initContainers?.[0]?.args).toContain(
      `--authority-ca=${BROKER_TOKEN_DIR}/authority-ca.crt`,
    );
    expect(out.spec?.volumes?.[0]?.projected?.sources?.[1]).toEqual({
      downwardAPI: {
        items: [
          {
            path: 'authority-ca.crt',
            fieldRef: { fieldPath: "metadata.annotations['warden.dev/authority-ca']" },
          },
        ],
      },
    });
    // The broker gets only its V8 options: none of the agent's addresses, and no secret.
    expect(out.spec?.initContainers?.[0]?.env).toEqual([
      { name: 'NODE_OPTIONS', value: BROKER_NODE_OPTIONS },
    ]);
    expect(mutatePod(out, 'support-bot', agentIdentity(), config)).toEqual(out);
  });

  it('adds a projected token volume with the default audience and lifetime', () => {
    const vol = mutated().spec?.volumes?.find((v) => v.name === BROKER_TOKEN_VOLUME);
    expect(vol?.projected?.sources).toEqual([
      { serviceAccountToken: { audience: 'warden.dev/broker', expirationSeconds: 3600, path: 'token' } },
    ]);
  });

  it('takes audience and lifetime from the AgentIdentity, never below 600 s', () => {
    const custom = mutated(
      agentPod(),
      agentIdentity({ attestation: { audience: 'aud-x', tokenExpirationSeconds: 60 } }),
    );
    const src = custom.spec?.volumes?.[0]?.projected?.sources?.[0]?.serviceAccountToken;
    expect(src).toMatchObject({ audience: 'aud-x', expirationSeconds: 600 });
  });

  it('mounts the token volume into the broker only', () => {
    const pod = agentPod();
    pod.spec!.initContainers = [{ name: 'init', image: 'busybox' }];
    pod.spec!.containers.push({ name: 'tools', image: 'busybox' });
    const out = mutated(pod);
    const all = [...(out.spec?.initContainers ?? []), ...(out.spec?.containers ?? [])];
    const mounting = all.filter((c) => c.volumeMounts?.some((m) => m.name === BROKER_TOKEN_VOLUME));
    expect(mounting.map((c) => c.name)).toEqual([BROKER_CONTAINER_NAME]);
    expect(mounting[0]?.volumeMounts?.[0]).toEqual({
      name: BROKER_TOKEN_VOLUME,
      mountPath: BROKER_TOKEN_DIR,
      readOnly: true,
    });
  });

  it('tells every agent and regular init container where the broker is, and gives the broker no such env', () => {
    const pod = agentPod();
    pod.spec!.initContainers = [{ name: 'init', image: 'busybox' }];
    pod.spec!.containers.push({ name: 'tools', image: 'busybox' });
    const out = mutated(pod);
    for (const c of [...(out.spec?.containers ?? []), out.spec?.initContainers?.[1]]) {
      expect(c?.env?.map((e) => e.name)).toEqual([
        ENV_MCP_BASE,
        ENV_HTTP_BASE,
        ENV_PG_BASE,
        ENV_USER_TOKEN_HEADER,
      ]);
    }
    // The broker gets only its V8 options: none of the agent's addresses, and no secret.
    expect(out.spec?.initContainers?.[0]?.env).toEqual([
      { name: 'NODE_OPTIONS', value: BROKER_NODE_OPTIONS },
    ]);
  });

  it('puts no credential in agent env: only loopback URLs and a header name, no secret or token reference', () => {
    const env = mutated().spec?.containers[0]?.env ?? [];
    for (const e of env) {
      expect(e.valueFrom).toBeUndefined();
      // A URL without userinfo: no user name or password reaches the agent, only where the broker is.
      expect(e.value).toMatch(/^((http|postgresql):\/\/127\.0\.0\.1:\d+|x-warden-user-token)$/);
    }
  });

  it('keeps an env value the pod author set', () => {
    const pod = agentPod();
    pod.spec!.containers[0]!.env = [{ name: ENV_MCP_BASE, value: 'http://elsewhere' }];
    const env = mutated(pod).spec?.containers[0]?.env ?? [];
    expect(env.filter((e) => e.name === ENV_MCP_BASE)).toEqual([
      { name: ENV_MCP_BASE, value: 'http://elsewhere' },
    ]);
  });

  it('labels the pod and records what was injected', () => {
    const out = mutated();
    expect(out.metadata?.labels?.[LABEL_AGENT]).toBe('support-bot');
    const record = JSON.parse(out.metadata?.annotations?.[ANNOTATION_INJECTED] ?? '{}');
    expect(record).toEqual({
      version: TEST_BROKER.version,
      agent: 'support-bot',
      brokerImage: TEST_BROKER.image,
      container: BROKER_CONTAINER_NAME,
      volume: BROKER_TOKEN_VOLUME,
      audience: 'warden.dev/broker',
      expirationSeconds: 3600,
      env: [ENV_MCP_BASE, ENV_HTTP_BASE, ENV_PG_BASE, ENV_USER_TOKEN_HEADER],
    });
  });

  it('does not modify its input', () => {
    const pod = agentPod();
    const before = structuredClone(pod);
    mutated(pod);
    expect(pod).toEqual(before);
  });

  it('is idempotent: mutating a mutated pod changes nothing', () => {
    const once = mutated();
    const twice = mutatePod(once, 'support-bot', agentIdentity(), TEST_BROKER);
    expect(twice).toEqual(once);
    expect(diff(once, twice)).toEqual([]);
  });

  it('on reinvocation adds the env only to a container another webhook added since', () => {
    const once = mutated();
    once.spec!.containers.push({ name: 'added-later', image: 'busybox' });
    const ops = diff(once, mutatePod(once, 'support-bot', agentIdentity(), TEST_BROKER));
    expect(ops).toEqual([{ op: 'add', path: '/spec/containers/1/env', value: expect.any(Array) }]);
  });
});
