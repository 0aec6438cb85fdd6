import { BlockList, isIP } from 'node:net';
import { Environment } from '@marcbachmann/cel-js';
import { compileToolGlob, type GlobMatcher } from './glob.js';

/**
 * The one CEL environment every policy expression is compiled in: typed
 * variables `agent`, `user`, `request`, `context` (so undeclared names, unknown
 * fields and type errors fail at compile time), the library's standard
 * functions (strings, `matches`, macros, timestamps/durations with time zones)
 * and Warden's helpers (`glob`, `inCidr`).
 *
 * Variables are instances of the classes below: the library maps a registered
 * class straight to its CEL message type, so evaluation reads plain properties
 * with no per-call conversion.
 */

export class CelPod {
  constructor(
    readonly name: string | undefined,
    readonly uid: string | undefined,
    readonly node: string | undefined,
    readonly images: readonly string[],
  ) {}
}

export class CelAgent {
  constructor(
    readonly name: string,
    readonly namespace: string,
    readonly serviceAccount: string | undefined,
    readonly labels: Readonly<Record<string, string>>,
    readonly pod: CelPod,
  ) {}
}

export class CelUser {
  constructor(
    readonly present: boolean,
    readonly sub: string | undefined,
    readonly issuer: string | undefined,
    readonly groups: readonly string[],
    readonly department: string | undefined,
    readonly claims: ReadonlyMap<string, unknown>,
  ) {}
}

/** One agent of `request.chain`. */
export class CelChainLink {
  constructor(
    readonly name: string,
    readonly namespace: string,
  ) {}
}

export class CelRequest {
  constructor(
    readonly kind: string,
    readonly target: string,
    readonly tool: string | undefined,
    readonly args: ReadonlyMap<string, unknown>,
    readonly method: string | undefined,
    readonly path: string | undefined,
    readonly time: Date,
    /** The agents the call came through, origin first, the calling agent last (never empty). */
    readonly chain: readonly CelChainLink[],
  ) {}
}

export class CelContext {
  constructor(
    readonly purpose: string | undefined,
    readonly ticketId: string | undefined,
    readonly model: string | undefined,
    readonly chainStep: bigint | undefined,
    readonly geo: string | undefined,
  ) {}
}

/** The activation passed to every compiled program. */
export interface CelActivation {
  readonly agent: CelAgent;
  readonly user: CelUser;
  readonly request: CelRequest;
  readonly context: CelContext;
}

/** Field names per variable, for "did you mean" hints and docs. */
export const VARIABLE_FIELDS = {
  agent: ['name', 'namespace', 'serviceAccount', 'labels', 'pod'],
  'agent.pod': ['name', 'uid', 'node', 'images'],
  user: ['present', 'sub', 'issuer', 'groups', 'department', 'claims'],
  request: ['kind', 'target', 'tool', 'args', 'method', 'path', 'time', 'chain'],
  'request.chain[]': ['name', 'namespace'],
  context: ['purpose', 'ticketId', 'model', 'chainStep', 'geo'],
} as const;

export const VARIABLE_NAMES = ['agent', 'user', 'request', 'context'] as const;

/** Helper functions Warden adds on top of the standard library (names used for hints). */
export const HELPER_FUNCTIONS = ['glob', 'inCidr'] as const;

const MAX_CACHED = 1024;

/** Bounded memo: policies use few distinct literal patterns; attacker-chosen dynamic ones must not grow it. */
function memo<V>(build: (key: string) => V): (key: string) => V {
  const cache = new Map<string, V>();
  return (key) => {
    let v = cache.get(key);
    if (v === undefined) {
      v = build(key);
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(key, v);
    }
    return v;
  };
}

const toolGlob = memo<GlobMatcher>(compileToolGlob);

/**
 * Internal name the compiler points `.matches(` calls at (see expression.ts):
 * same semantics as the standard function, with the RegExp compiled once.
 * Policies cannot call it directly (the compiler rejects the name).
 */
export const CACHED_MATCHES = 'wardenCachedMatches';

const regex = memo((pattern: string): RegExp => new RegExp(pattern));

/** Parse "10.0.0.0/8" or "2001:db8::/32" into a matcher; throws with a readable message. */
function parseCidr(cidr: string): BlockList {
  const slash = cidr.indexOf('/');
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  const family = isIP(address);
  if (family === 0) throw new Error(`inCidr: '${cidr}' is not a CIDR range (expected e.g. '10.0.0.0/8')`);
  const maxPrefix = family === 4 ? 32 : 128;
  const prefix = slash < 0 ? maxPrefix : Number(cidr.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > maxPrefix) {
    throw new Error(`inCidr: '${cidr}' has an invalid prefix length (0..${maxPrefix})`);
  }
  const list = new BlockList();
  list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  return list;
}

const cidrList = memo(parseCidr);

/** True when `ip` lies inside `cidr`; a malformed IP is simply not inside (it is request data). */
export function inCidr(ip: string, cidr: string): boolean {
  const list = cidrList(cidr);
  const family = isIP(ip);
  if (family === 0) return false;
  return list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** Validate a CIDR literal at compile time; returns a problem message or null. */
export function cidrProblem(cidr: string): string | null {
  try {
    parseCidr(cidr);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

function buildEnvironment(): Environment {
  return new Environment({ unlistedVariablesAreDyn: false, homogeneousAggregateLiterals: true })
    .registerType('warden.Pod', {
      ctor: CelPod,
      fields: { name: 'string', uid: 'string', node: 'string', images: 'list<string>' },
    })
    .registerType('warden.Agent', {
      ctor: CelAgent,
      fields: {
        name: 'string',
        namespace: 'string',
        serviceAccount: 'string',
        labels: 'map<string, string>',
        pod: 'warden.Pod',
      },
    })
    .registerType('warden.User', {
      ctor: CelUser,
      fields: {
        present: 'bool',
        sub: 'string',
        issuer: 'string',
        groups: 'list<string>',
        department: 'string',
        claims: 'map<string, dyn>',
      },
    })
    .registerType('warden.ChainLink', {
      ctor: CelChainLink,
      fields: { name: 'string', namespace: 'string' },
    })
    .registerType('warden.Request', {
      ctor: CelRequest,
      fields: {
        kind: 'string',
        target: 'string',
        tool: 'string',
        args: 'map<string, dyn>',
        method: 'string',
        path: 'string',
        time: 'google.protobuf.Timestamp',
        chain: 'list<warden.ChainLink>',
      },
    })
    .registerType('warden.Context', {
      ctor: CelContext,
      fields: { purpose: 'string', ticketId: 'string', model: 'string', chainStep: 'int', geo: 'string' },
    })
    .registerVariable('agent', 'warden.Agent', { description: 'The calling AgentIdentity and its pod' })
    .registerVariable('user', 'warden.User', { description: 'The human the agent acts for (user.present)' })
    .registerVariable('request', 'warden.Request', { description: 'The tool call or HTTP request' })
    .registerVariable('context', 'warden.Context', { description: 'Request metadata; use has()' })
    .registerFunction('string.glob(string): bool', (s: string, pattern: string) => toolGlob(pattern)(s), {
      description: "Glob match: '*' any run of characters, '?' one character",
    })
    .registerFunction('glob(string, string): bool', (pattern: string, s: string) => toolGlob(pattern)(s), {
      description: 'glob(pattern, s): same as s.glob(pattern)',
    })
    .registerFunction(
      `string.${CACHED_MATCHES}(string): bool`,
      (s: string, pattern: string) => regex(pattern).test(s),
      {
        description: 'internal: matches() with a cached RegExp',
      },
    )
    .registerFunction('string.inCidr(string): bool', inCidr, {
      description: "ip.inCidr('10.0.0.0/8'): IPv4/IPv6 range membership",
    })
    .registerFunction('inCidr(string, string): bool', inCidr, {
      description: "inCidr(ip, '10.0.0.0/8'): IPv4/IPv6 range membership",
    });
}

let environment: Environment | undefined;

/** The shared environment, built on first use (building one is expensive). */
export function celEnvironment(): Environment {
  environment ??= buildEnvironment();
  return environment;
}
