/**
 * The injected broker as a security boundary. A session is worth having only if the pod-bound
 * projected token that buys it stays inside Warden's broker container; these pure checks say
 * whether a pod's shape guarantees that. The webhook runs them at admission, the authority runs
 * them on the live pod at every token exchange and refresh. docs/threat-model.md ("Only the
 * injected broker attests") gives the argument for each rule.
 *
 * Two questions, two functions:
 * - brokerTokenExposures: could anything but the broker read a token for the broker audience
 *   (another container mounting the token volume, another volume projecting that audience, an
 *   ephemeral container in the broker's process namespace, a shared PID namespace)?
 * - injectedBrokerProblems: is the broker the one the webhook builds — the `warden.dev/injected`
 *   record, a native-sidecar container running a trusted broker image with Warden's arguments and
 *   nothing a pod author could use to run their own code in it, and the token volume as injected?
 *
 * Field paths name the place in the pod; messages name the container and the volume.
 */
import type { V1Container, V1Pod, V1Probe, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import {
  ANNOTATION_AGENT,
  ANNOTATION_AUTHORITY_CA,
  ANNOTATION_INJECT,
  ANNOTATION_INJECTED,
  BROKER_AUTHORITY_CA_FILE,
  BROKER_CONTAINER_NAME,
  BROKER_SPOOL_DIR,
  BROKER_SPOOL_VOLUME,
  BROKER_TOKEN_DIR,
  BROKER_TOKEN_FILE,
  BROKER_TOKEN_VOLUME,
} from '../constants.js';

/** Machine-readable reasons; they end up in admission Events, audit entries and logs. */
export type BrokerPodReason =
  | 'OptedOut'
  | 'NotInjected'
  | 'InjectedRecordMismatch'
  | 'BrokerMissing'
  | 'BrokerImageNotTrusted'
  | 'BrokerContainerAltered'
  | 'TokenVolumeAltered'
  | 'SpoolVolumeAltered'
  | 'TokenVolumeMounted'
  | 'BrokerAudienceToken'
  | 'EphemeralTargetsBroker'
  | 'SharedProcessNamespace'
  | 'HostPID'
  | 'HostNetwork';

export interface BrokerPodProblem {
  reason: BrokerPodReason;
  /** Field path in the pod, e.g. `spec.containers[0].volumeMounts[1]`. */
  field: string;
  message: string;
}

/** What the broker must look like: what the controller injects. */
export interface BrokerExpectation {
  /** Broker images this Warden trusts: the one it injects (and, during an upgrade, earlier ones). */
  trustedImages: readonly string[];
  /** The authority URL the webhook passes to the broker (`--authority-url`): the authority's issuer. */
  authorityUrl: string;
}

type AnyContainer = Pick<
  V1Container,
  | 'name'
  | 'image'
  | 'command'
  | 'args'
  | 'env'
  | 'envFrom'
  | 'volumeMounts'
  | 'workingDir'
  | 'lifecycle'
  | 'startupProbe'
  | 'livenessProbe'
  | 'readinessProbe'
  | 'restartPolicy'
> & { targetContainerName?: string };

type ContainerList = 'containers' | 'initContainers' | 'ephemeralContainers';

/** Every container of the pod with the field path of its list. */
function allContainers(pod: V1Pod): Array<{ list: ContainerList; index: number; c: AnyContainer }> {
  const out: Array<{ list: ContainerList; index: number; c: AnyContainer }> = [];
  for (const list of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    (pod.spec?.[list] ?? []).forEach((c: AnyContainer, index: number) => {
      out.push({ list, index, c });
    });
  }
  return out;
}

/** The injected broker is the init container (native sidecar) named warden-broker; names are unique per pod. */
const isBroker = (list: ContainerList, c: AnyContainer) =>
  list === 'initContainers' && c.name === BROKER_CONTAINER_NAME;

/** Audiences a volume's projected service-account tokens are requested for, with their source index. */
function projectedAudiences(v: V1Volume): Array<{ source: number; audience: string }> {
  const out: Array<{ source: number; audience: string }> = [];
  (v.projected?.sources ?? []).forEach((s, source) => {
    const audience = s.serviceAccountToken?.audience;
    if (audience !== undefined) out.push({ source, audience });
  });
  return out;
}

const ONLY_BROKER = 'only the injected Warden broker may hold that token';

/**
 * Every way a container other than the injected broker could read a token for one of
 * `audiences` (the audiences the authority accepts for this pod). Empty = none.
 */
export function brokerTokenExposures(pod: V1Pod, audiences: readonly string[]): BrokerPodProblem[] {
  const problems: BrokerPodProblem[] = [];
  const containers = allContainers(pod);
  const mountsOf = (volume: string) =>
    containers.flatMap(({ list, index, c }) =>
      (c.volumeMounts ?? []).flatMap((m, j) =>
        m.name === volume && !isBroker(list, c) ? [{ list, index, c, mount: j }] : [],
      ),
    );

  // 1. The injected token volume: mounted into the broker only.
  for (const m of mountsOf(BROKER_TOKEN_VOLUME)) {
    problems.push({
      reason: 'TokenVolumeMounted',
      field: `spec.${m.list}[${m.index}].volumeMounts[${m.mount}]`,
      message: `container "${m.c.name}" mounts volume "${BROKER_TOKEN_VOLUME}", the broker's projected service-account token; ${ONLY_BROKER}: remove this mount`,
    });
  }

  // 2. Any other volume projecting a token for a broker audience: a second copy of the credential.
  (pod.spec?.volumes ?? []).forEach((v, i) => {
    if (v.name === BROKER_TOKEN_VOLUME) return;
    const hit = projectedAudiences(v).find((a) => audiences.includes(a.audience));
    if (!hit) return;
    const what = `a service-account token for the Warden broker audience "${hit.audience}"`;
    const mounts = mountsOf(v.name);
    if (mounts.length === 0) {
      problems.push({
        reason: 'BrokerAudienceToken',
        field: `spec.volumes[${i}].projected.sources[${hit.source}].serviceAccountToken.audience`,
        message: `volume "${v.name}" projects ${what}; ${ONLY_BROKER}: remove the volume`,
      });
    }
    for (const m of mounts) {
      problems.push({
        reason: 'BrokerAudienceToken',
        field: `spec.${m.list}[${m.index}].volumeMounts[${m.mount}]`,
        message: `container "${m.c.name}" mounts volume "${v.name}", which projects ${what}; ${ONLY_BROKER}: remove the volume and this mount`,
      });
    }
  });

  // 3. Process-namespace sharing: /proc/<broker pid>/root and the broker's memory are readable
  // from a container in the same PID namespace that runs as the broker's UID.
  for (const { list, index, c } of containers) {
    if (list === 'ephemeralContainers' && c.targetContainerName === BROKER_CONTAINER_NAME) {
      problems.push({
        reason: 'EphemeralTargetsBroker',
        field: `spec.ephemeralContainers[${index}].targetContainerName`,
        message: `ephemeral container "${c.name}" shares the process namespace of "${BROKER_CONTAINER_NAME}" and can read its token; debug the agent container instead, and delete this pod`,
      });
    }
  }
  if (pod.spec?.shareProcessNamespace === true) {
    problems.push({
      reason: 'SharedProcessNamespace',
      field: 'spec.shareProcessNamespace',
      message: `a shared process namespace lets every container read the broker's files and memory through /proc; remove spec.shareProcessNamespace`,
    });
  }
  if (pod.spec?.hostPID === true) {
    problems.push({
      reason: 'HostPID',
      field: 'spec.hostPID',
      message: `the host PID namespace lets the pod's containers read the broker's files and memory through /proc; remove spec.hostPID`,
    });
  }
  return problems;
}

/** The `warden.dev/injected` record fields attestation relies on (webhook/mutate.ts writes it). */
interface InjectedRecordView {
  agent?: unknown;
  container?: unknown;
  volume?: unknown;
  audience?: unknown;
}

function readRecord(raw: string): InjectedRecordView | undefined {
  try {
    const v: unknown = JSON.parse(raw);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as InjectedRecordView) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the pod carries the broker the webhook injects for AgentIdentity `agent` with token
 * audience `audience`. Empty = yes. Opted-out and never-injected pods get one problem; otherwise
 * every difference is listed.
 */
export function injectedBrokerProblems(
  pod: V1Pod,
  agent: string,
  audience: string,
  expect: BrokerExpectation,
): BrokerPodProblem[] {
  const annotations = pod.metadata?.annotations ?? {};
  if (annotations[ANNOTATION_INJECT] === 'false') {
    return [
      {
        reason: 'OptedOut',
        field: `metadata.annotations[${ANNOTATION_INJECT}]`,
        message: `the pod opted out of injection (${ANNOTATION_INJECT}: "false"), so it has no Warden broker and gets no session; remove the annotation and recreate the pod`,
      },
    ];
  }
  const raw = annotations[ANNOTATION_INJECTED];
  if (raw === undefined) {
    return [
      {
        reason: 'NotInjected',
        field: `metadata.annotations[${ANNOTATION_INJECTED}]`,
        message: `the pod was not admitted through the Warden webhook (no ${ANNOTATION_INJECTED} record), so it has no Warden broker and gets no session; check that the namespace is not excluded from the webhook and recreate the pod`,
      },
    ];
  }
  const problems: BrokerPodProblem[] = [];
  const record = readRecord(raw);
  const recordField = `metadata.annotations[${ANNOTATION_INJECTED}]`;
  if (!record) {
    problems.push({
      reason: 'InjectedRecordMismatch',
      field: recordField,
      message: 'the injected record is not a JSON object; recreate the pod so the webhook writes it',
    });
  } else {
    const want: Record<keyof InjectedRecordView, string> = {
      agent,
      container: BROKER_CONTAINER_NAME,
      volume: BROKER_TOKEN_VOLUME,
      audience,
    };
    for (const [key, value] of Object.entries(want) as Array<[keyof InjectedRecordView, string]>) {
      if (record[key] !== value) {
        problems.push({
          reason: 'InjectedRecordMismatch',
          field: `${recordField}.${key}`,
          message: `the injected record says ${key} ${JSON.stringify(record[key])}, but the pod needs ${JSON.stringify(value)} (${key === 'agent' ? ANNOTATION_AGENT : key === 'audience' ? 'AgentIdentity spec.attestation.audience' : 'as Warden injects it'}); recreate the pod so the webhook injects it`,
        });
      }
    }
  }
  if (pod.spec?.hostNetwork === true) {
    problems.push({
      reason: 'HostNetwork',
      field: 'spec.hostNetwork',
      message:
        "with the host network the broker's loopback endpoints are reachable by every process on the node; remove spec.hostNetwork",
    });
  }
  const init = pod.spec?.initContainers ?? [];
  const index = init.findIndex((c) => c.name === BROKER_CONTAINER_NAME);
  if (index === -1) {
    problems.push({
      reason: 'BrokerMissing',
      field: 'spec.initContainers',
      message: `no "${BROKER_CONTAINER_NAME}" init container; recreate the pod so the webhook injects the broker`,
    });
  } else {
    problems.push(...brokerContainerProblems(init[index] as V1Container, index, expect));
  }
  problems.push(...tokenVolumeProblems(pod, audience));
  problems.push(...spoolVolumeProblems(pod));
  return problems;
}

/**
 * The audit spool's volume, when the pod has one: an emptyDir (nothing another pod or the node
 * shares), mounted by the broker alone — the entries are the agent's audit trail before the
 * authority holds it, so the agent must neither read nor rewrite them.
 */
export function spoolVolumeProblems(pod: V1Pod): BrokerPodProblem[] {
  const problems: BrokerPodProblem[] = [];
  const volumes = pod.spec?.volumes ?? [];
  const i = volumes.findIndex((v) => v.name === BROKER_SPOOL_VOLUME);
  if (i === -1) return problems;
  const v = volumes[i] as V1Volume;
  const kinds = Object.entries(v)
    .filter(([k, value]) => k !== 'name' && value !== undefined)
    .map(([k]) => k);
  if (kinds.length !== 1 || kinds[0] !== 'emptyDir') {
    problems.push({
      reason: 'SpoolVolumeAltered',
      field: `spec.volumes[${i}]`,
      message: `volume "${BROKER_SPOOL_VOLUME}" is not an emptyDir, unlike the one Warden injects for the broker's audit spool; recreate the pod so the webhook injects it`,
    });
  }
  for (const { list, index, c } of allContainers(pod)) {
    if (isBroker(list, c)) continue;
    (c.volumeMounts ?? []).forEach((m, j) => {
      if (m.name !== BROKER_SPOOL_VOLUME) return;
      problems.push({
        reason: 'SpoolVolumeAltered',
        field: `spec.${list}[${index}].volumeMounts[${j}]`,
        message: `container "${c.name}" mounts volume "${BROKER_SPOOL_VOLUME}", the broker's audit spool; only the injected Warden broker may: remove this mount`,
      });
    });
  }
  return problems;
}

/** Where the ServiceAccount admission plugin mounts the API-access token into every container. */
const SERVICE_ACCOUNT_API_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Tokens of the broker's NODE_OPTIONS: heap sizing only; anything else could load code. */
const NODE_OPTION = /^--max-(semi|old)-space-size=\d{1,6}$/;
const LOOPBACK_LISTEN = /^127\.0\.0\.1:\d{1,5}$/;
const HEALTH_LISTEN = /^(0\.0\.0\.0|127\.0\.0\.1):\d{1,5}$/;

/** The `warden broker` flags the webhook passes, and which values each may have. */
function brokerFlags(expect: BrokerExpectation): Record<string, (v: string) => boolean> {
  return {
    '--token-file': (v) => v === `${BROKER_TOKEN_DIR}/${BROKER_TOKEN_FILE}`,
    '--authority-url': (v) => v === expect.authorityUrl,
    '--authority-ca': (v) => v === `${BROKER_TOKEN_DIR}/${BROKER_AUTHORITY_CA_FILE}`,
    '--mcp-listen': (v) => LOOPBACK_LISTEN.test(v),
    '--http-listen': (v) => LOOPBACK_LISTEN.test(v),
    '--pg-listen': (v) => LOOPBACK_LISTEN.test(v),
    '--health-listen': (v) => HEALTH_LISTEN.test(v),
    '--audit-spool': (v) => v === BROKER_SPOOL_DIR,
    '--audit-spool-max-bytes': (v) => /^[1-9][0-9]{4,12}$/.test(v),
  };
}
const REQUIRED_FLAGS = ['--token-file', '--authority-url'];

function execProbe(p: V1Probe | undefined): boolean {
  return p?.exec !== undefined;
}

/**
 * Differences between a pod's broker container and one the webhook builds that would let the pod's
 * author run their own code in it, point it elsewhere, or give its token to something else. Values
 * that change with configuration but cannot do that (ports, resources, pull policy, security
 * context) are not compared, so a configuration change does not orphan running pods.
 */
export function brokerContainerProblems(
  c: V1Container,
  index: number,
  expect: BrokerExpectation,
): BrokerPodProblem[] {
  const at = `spec.initContainers[${index}]`;
  const name = `container "${BROKER_CONTAINER_NAME}"`;
  const problems: BrokerPodProblem[] = [];
  const altered = (field: string, what: string) =>
    problems.push({
      reason: 'BrokerContainerAltered',
      field: `${at}${field}`,
      message: `${name} ${what}, unlike the broker Warden injects; recreate the pod so the webhook injects it`,
    });
  if (!c.image || !expect.trustedImages.includes(c.image)) {
    problems.push({
      reason: 'BrokerImageNotTrusted',
      field: `${at}.image`,
      message: `${name} runs image ${JSON.stringify(c.image ?? '')}, which is not a broker image this Warden trusts (controller --broker-image, --trusted-broker-images); recreate the pod so the webhook injects the broker`,
    });
  }
  if (c.restartPolicy !== 'Always')
    altered('.restartPolicy', 'is not a native sidecar (restartPolicy Always)');
  if ((c.command ?? []).length > 0) altered('.command', 'overrides the image entrypoint');
  if (c.workingDir !== undefined && c.workingDir !== '') altered('.workingDir', 'sets a working directory');
  if ((c.envFrom ?? []).length > 0) altered('.envFrom', 'takes environment variables from elsewhere');
  if (c.lifecycle !== undefined) altered('.lifecycle', 'has lifecycle hooks');
  for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
    if (execProbe(c[probe])) altered(`.${probe}.exec`, `runs a command as its ${probe}`);
  }
  (c.env ?? []).forEach((e, i) => {
    const ok =
      e.name === 'NODE_OPTIONS' &&
      e.valueFrom === undefined &&
      (e.value ?? '').split(' ').every((t) => NODE_OPTION.test(t));
    if (!ok)
      altered(`.env[${i}]`, `sets environment variable ${JSON.stringify(e.name)} to a value Warden does not`);
  });
  // The token volume, read-only, and at most the API-access token the ServiceAccount admission
  // plugin mounts into every container (a path the broker never reads): no mount can plant files
  // where the broker loads code or configuration from.
  const mounts = c.volumeMounts ?? [];
  const plain = (m: V1VolumeMount) =>
    m.readOnly === true && (m.subPath ?? '') === '' && (m.subPathExpr ?? '') === '';
  const token = mounts.filter(
    (m) => m.name === BROKER_TOKEN_VOLUME && m.mountPath === BROKER_TOKEN_DIR && plain(m),
  );
  // The audit spool (writable; absent on pods injected before it existed).
  const spool = mounts.filter((m) => m.name === BROKER_SPOOL_VOLUME);
  const spoolOk = spool.every(
    (m) => m.mountPath === BROKER_SPOOL_DIR && (m.subPath ?? '') === '' && (m.subPathExpr ?? '') === '',
  );
  const others = mounts.filter((m) => m.name !== BROKER_TOKEN_VOLUME && m.name !== BROKER_SPOOL_VOLUME);
  if (
    token.length !== 1 ||
    mounts.length !== 1 + spool.length + others.length ||
    spool.length > 1 ||
    !spoolOk ||
    others.length > 1 ||
    others.some((m) => m.mountPath !== SERVICE_ACCOUNT_API_DIR || !plain(m))
  ) {
    altered(
      '.volumeMounts',
      `must mount exactly volume "${BROKER_TOKEN_VOLUME}" read-only at ${BROKER_TOKEN_DIR}, volume "${BROKER_SPOOL_VOLUME}" at ${BROKER_SPOOL_DIR} (and at most the API access token at ${SERVICE_ACCOUNT_API_DIR})`,
    );
  }
  problems.push(...brokerArgProblems(c.args ?? [], at, name, expect));
  return problems;
}

function brokerArgProblems(
  args: readonly string[],
  at: string,
  name: string,
  expect: BrokerExpectation,
): BrokerPodProblem[] {
  const problems: BrokerPodProblem[] = [];
  const bad = (i: number, what: string) =>
    problems.push({
      reason: 'BrokerContainerAltered',
      field: `${at}.args[${i}]`,
      message: `${name} ${what}; recreate the pod so the webhook injects the broker`,
    });
  if (args[0] !== 'broker') bad(0, 'does not run `warden broker`');
  const flags = brokerFlags(expect);
  const seen = new Set<string>();
  for (const [k, arg] of args.slice(1).entries()) {
    const i = k + 1;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const check = Object.hasOwn(flags, flag) ? flags[flag] : undefined;
    if (!check || eq === -1) {
      bad(i, `passes ${JSON.stringify(flag)}, which Warden does not`);
    } else if (seen.has(flag)) {
      bad(i, `passes ${flag} twice`);
    } else {
      seen.add(flag);
      if (!check(arg.slice(eq + 1))) {
        bad(
          i,
          flag === '--authority-url'
            ? `sends its token to ${JSON.stringify(arg.slice(eq + 1))}, not to this authority (${expect.authorityUrl})`
            : `passes ${flag} with a value Warden does not`,
        );
      }
    }
  }
  for (const flag of REQUIRED_FLAGS) {
    if (!seen.has(flag)) bad(args.length, `does not pass ${flag}`);
  }
  return problems;
}

/** The token volume as injected: one projected SA token for `audience`, plus the optional CA file. */
function tokenVolumeProblems(pod: V1Pod, audience: string): BrokerPodProblem[] {
  const volumes = pod.spec?.volumes ?? [];
  const i = volumes.findIndex((v) => v.name === BROKER_TOKEN_VOLUME);
  const fail = (field: string, what: string): BrokerPodProblem[] => [
    {
      reason: 'TokenVolumeAltered',
      field,
      message: `volume "${BROKER_TOKEN_VOLUME}" ${what}, unlike the one Warden injects; recreate the pod so the webhook injects it`,
    },
  ];
  if (i === -1) return fail('spec.volumes', 'is missing');
  const v = volumes[i] as V1Volume;
  const at = `spec.volumes[${i}]`;
  const kinds = Object.entries(v)
    .filter(([k, value]) => k !== 'name' && value !== undefined)
    .map(([k]) => k);
  if (kinds.length !== 1 || kinds[0] !== 'projected') return fail(at, 'is not a projected volume');
  const sources = v.projected?.sources ?? [];
  const tokens = sources.filter((s) => s.serviceAccountToken !== undefined);
  const token = tokens[0]?.serviceAccountToken;
  if (tokens.length !== 1 || token?.audience !== audience || token.path !== BROKER_TOKEN_FILE) {
    return fail(
      `${at}.projected.sources`,
      `must project one service-account token for audience "${audience}" at path "${BROKER_TOKEN_FILE}"`,
    );
  }
  const caField = `metadata.annotations['${ANNOTATION_AUTHORITY_CA}']`;
  for (const [j, s] of sources.entries()) {
    if (s.serviceAccountToken !== undefined) continue;
    const items = s.downwardAPI?.items ?? [];
    const keys = Object.entries(s).filter(([, value]) => value !== undefined);
    const caOnly =
      keys.length === 1 &&
      items.length === 1 &&
      items[0]?.path === BROKER_AUTHORITY_CA_FILE &&
      items[0]?.fieldRef?.fieldPath === caField;
    if (!caOnly)
      return fail(`${at}.projected.sources[${j}]`, 'projects more than the token and the authority CA');
  }
  return [];
}

/** The pod without its broker container: the agent's own containers, as allowedImages judges them. */
export function withoutBroker(pod: V1Pod): V1Pod {
  const init = pod.spec?.initContainers;
  if (!pod.spec || !init?.some((c) => c.name === BROKER_CONTAINER_NAME)) return pod;
  return {
    ...pod,
    spec: { ...pod.spec, initContainers: init.filter((c) => c.name !== BROKER_CONTAINER_NAME) },
  };
}
