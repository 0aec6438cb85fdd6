import { MAX_CHAIN_DEPTH } from '../constants.js';
import type { PolicyBounds } from './bounds.js';
import {
  type CelActivation,
  CelAgent,
  CelChainLink,
  CelContext,
  CelPod,
  CelRequest,
  CelUser,
} from './cel-env.js';
import { celTimestamp } from './time-zones.js';
import type { AgentInput, AgentRefInput, ContextInput, PolicyInput, UserInput } from './types.js';

/**
 * Builds the CEL activation from caller input, enforcing the input bounds.
 * Attacker-controlled data (request.args, user claims, context strings) is
 * copied into fresh Maps/arrays while it is measured, so CEL never sees
 * prototypes, getters or class instances, and a `__proto__` key is just a key.
 */

export type InputProblemReason = 'InputTooLarge' | 'InvalidInput';

export class InputProblem extends Error {
  constructor(
    readonly reason: InputProblemReason,
    /** Where in the input, e.g. `request.args.items[3]`. */
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

export type BuildActivationResult =
  | { readonly ok: true; readonly activation: CelActivation }
  | { readonly ok: false; readonly problem: InputProblem };

/** Running totals while copying one input. */
export interface Budget {
  bytes: number;
  nodes: number;
}

export const EMPTY_MAP: ReadonlyMap<string, unknown> = new Map();
const EMPTY_LIST: readonly string[] = Object.freeze([]);

function tooLarge(path: string, message: string): never {
  throw new InputProblem('InputTooLarge', path, message);
}

function invalid(path: string, message: string): never {
  throw new InputProblem('InvalidInput', path, message);
}

function checkString(s: string, path: string, bounds: PolicyBounds, budget: Budget): string {
  if (s.length > bounds.maxStringLength) {
    tooLarge(path, `string of ${s.length} characters exceeds the limit of ${bounds.maxStringLength}`);
  }
  budget.bytes += s.length + 2;
  if (budget.bytes > bounds.maxInputBytes) tooLarge(path, `input exceeds ${bounds.maxInputBytes} bytes`);
  return s;
}

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Where a value sits in the input, as a linked list built while copying and
 * only turned into a string (`request.args.items[3]`) when something is wrong:
 * formatting paths for every value would cost more than the copy itself.
 */
interface PathNode {
  readonly parent: PathNode | string;
  readonly key: string | number;
}
type Path = PathNode | string;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function formatPath(path: Path): string {
  if (typeof path === 'string') return path;
  const parent = formatPath(path.parent);
  if (typeof path.key === 'number') return `${parent}[${path.key}]`;
  return IDENTIFIER.test(path.key)
    ? `${parent}.${path.key}`
    : `${parent}[${JSON.stringify(path.key.slice(0, 64))}]`;
}

function tooLargeAt(path: Path, message: string): never {
  return tooLarge(formatPath(path), message);
}

function invalidAt(path: Path, message: string): never {
  return invalid(formatPath(path), message);
}

function countString(s: string, path: Path, bounds: PolicyBounds, budget: Budget): string {
  if (s.length > bounds.maxStringLength) {
    tooLargeAt(path, `string of ${s.length} characters exceeds the limit of ${bounds.maxStringLength}`);
  }
  budget.bytes += s.length + 2;
  if (budget.bytes > bounds.maxInputBytes) tooLargeAt(path, `input exceeds ${bounds.maxInputBytes} bytes`);
  return s;
}

/** Copy a JSON-like value, enforcing depth, node count, list length, string length and total size. */
function copyValue(value: unknown, path: Path, depth: number, bounds: PolicyBounds, budget: Budget): unknown {
  if (++budget.nodes > bounds.maxNodes) tooLargeAt(path, `input has more than ${bounds.maxNodes} values`);
  switch (typeof value) {
    case 'string':
      return countString(value, path, bounds, budget);
    case 'boolean':
      budget.bytes += 5;
      return value;
    case 'number':
      // JSON numbers are CEL doubles (as in cel-go's JSON conversion); int literals compare with them.
      if (!Number.isFinite(value)) invalidAt(path, 'number is not finite');
      budget.bytes += 8;
      return value;
    case 'bigint':
      budget.bytes += 8;
      return value;
    case 'object': {
      if (value === null) {
        budget.bytes += 4;
        return null;
      }
      if (depth >= bounds.maxDepth) tooLargeAt(path, `nesting deeper than ${bounds.maxDepth} levels`);
      if (Array.isArray(value)) {
        if (value.length > bounds.maxListLength) {
          tooLargeAt(path, `list of ${value.length} items exceeds the limit of ${bounds.maxListLength}`);
        }
        const out = new Array<unknown>(value.length);
        for (let i = 0; i < value.length; i++) {
          out[i] = copyValue(value[i], { parent: path, key: i }, depth + 1, bounds, budget);
        }
        return out;
      }
      if (value instanceof Map) return copyEntries([...value.entries()], path, depth, bounds, budget);
      if (isPlainObject(value)) return copyObjectEntries(value, path, depth, bounds, budget);
      return invalidAt(
        path,
        `unsupported value of type ${value.constructor?.name ?? 'object'}; only JSON values are allowed`,
      );
    }
    default:
      return invalidAt(path, `unsupported value of type ${typeof value}; only JSON values are allowed`);
  }
}

/** Plain objects become Maps: a `__proto__` or `constructor` key is then just a key. */
function copyObjectEntries(
  value: Record<string, unknown>,
  path: Path,
  depth: number,
  bounds: PolicyBounds,
  budget: Budget,
): Map<string, unknown> {
  const keys = Object.keys(value);
  if (keys.length > bounds.maxListLength) {
    tooLargeAt(path, `map of ${keys.length} entries exceeds the limit of ${bounds.maxListLength}`);
  }
  const out = new Map<string, unknown>();
  for (const k of keys) {
    const v = value[k];
    if (v === undefined) continue; // JSON has no undefined; treat as absent like JSON.stringify does
    const keyPath: PathNode = { parent: path, key: k };
    countString(k, keyPath, bounds, budget);
    out.set(k, copyValue(v, keyPath, depth + 1, bounds, budget));
  }
  return out;
}

function copyEntries(
  entries: [unknown, unknown][],
  path: Path,
  depth: number,
  bounds: PolicyBounds,
  budget: Budget,
): Map<string, unknown> {
  if (entries.length > bounds.maxListLength) {
    tooLargeAt(path, `map of ${entries.length} entries exceeds the limit of ${bounds.maxListLength}`);
  }
  const out = new Map<string, unknown>();
  for (const [k, v] of entries) {
    if (typeof k !== 'string') invalidAt(path, 'map keys must be strings');
    if (v === undefined) continue;
    const keyPath: PathNode = { parent: path, key: k };
    countString(k, keyPath, bounds, budget);
    out.set(k, copyValue(v, keyPath, depth + 1, bounds, budget));
  }
  return out;
}

function copyObject(
  value: unknown,
  path: string,
  bounds: PolicyBounds,
  budget: Budget,
): ReadonlyMap<string, unknown> {
  if (value === undefined || value === null) return EMPTY_MAP;
  if (typeof value !== 'object' || Array.isArray(value)) invalid(path, 'must be an object');
  return copyValue(value, path, 0, bounds, budget) as Map<string, unknown>;
}

function optionalString(v: unknown, path: string, bounds: PolicyBounds, budget: Budget): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') invalid(path, 'must be a string');
  return checkString(v, path, bounds, budget);
}

function stringList(v: unknown, path: string, bounds: PolicyBounds, budget: Budget): readonly string[] {
  if (v === undefined || v === null) return EMPTY_LIST;
  if (!Array.isArray(v)) invalid(path, 'must be a list of strings');
  if (v.length > bounds.maxListLength)
    tooLarge(path, `list of ${v.length} items exceeds the limit of ${bounds.maxListLength}`);
  return v.map((s, i) => {
    if (typeof s !== 'string') invalid(`${path}[${i}]`, 'must be a string');
    return checkString(s, `${path}[${i}]`, bounds, budget);
  });
}

/** The agent as CEL sees it; built once per policy set when the input carries no pod details. */
export function celAgent(agent: AgentInput): CelAgent {
  const pod = agent.pod;
  return new CelAgent(
    agent.name,
    agent.namespace,
    agent.serviceAccount,
    agent.labels ?? {},
    new CelPod(pod?.name, pod?.uid, pod?.node, pod?.images ?? EMPTY_LIST),
  );
}

export const ABSENT_USER = new CelUser(false, undefined, undefined, EMPTY_LIST, undefined, EMPTY_MAP);

export function celUser(user: UserInput | null | undefined, bounds: PolicyBounds, budget: Budget): CelUser {
  if (!user) return ABSENT_USER;
  return new CelUser(
    true,
    checkString(String(user.sub), 'user.sub', bounds, budget),
    optionalString(user.issuer, 'user.issuer', bounds, budget),
    stringList(user.groups, 'user.groups', bounds, budget),
    optionalString(user.department, 'user.department', bounds, budget),
    copyObject(user.claims, 'user.claims', bounds, budget),
  );
}

export const EMPTY_CONTEXT = new CelContext(undefined, undefined, undefined, undefined, undefined);

function celContext(
  context: ContextInput | null | undefined,
  bounds: PolicyBounds,
  budget: Budget,
): CelContext {
  if (!context) return EMPTY_CONTEXT;
  let chainStep: bigint | undefined;
  if (context.chainStep !== undefined && context.chainStep !== null) {
    if (typeof context.chainStep === 'bigint') chainStep = context.chainStep;
    else if (Number.isSafeInteger(context.chainStep)) chainStep = BigInt(context.chainStep);
    else invalid('context.chainStep', 'must be an integer');
  }
  return new CelContext(
    optionalString(context.purpose, 'context.purpose', bounds, budget),
    optionalString(context.ticketId, 'context.ticketId', bounds, budget),
    optionalString(context.model, 'context.model', bounds, budget),
    chainStep,
    optionalString(context.geo, 'context.geo', bounds, budget),
  );
}

/** CEL `request.chain`: the prior agents (bounded, validated) and then the calling agent. */
function celChain(
  prior: readonly AgentRefInput[] | undefined,
  agent: CelAgent,
  bounds: PolicyBounds,
  budget: Budget,
): readonly CelChainLink[] {
  const self = new CelChainLink(agent.name, agent.namespace);
  if (prior === undefined || prior === null) return [self];
  if (!Array.isArray(prior)) invalid('request.chain', 'must be a list of {name, namespace}');
  if (prior.length + 1 > MAX_CHAIN_DEPTH) {
    tooLarge(
      'request.chain',
      `a chain of ${prior.length + 1} agents exceeds the limit of ${MAX_CHAIN_DEPTH}`,
    );
  }
  const out = prior.map((a, i) => {
    if (
      a === null ||
      typeof a !== 'object' ||
      typeof a.name !== 'string' ||
      typeof a.namespace !== 'string'
    ) {
      invalid(`request.chain[${i}]`, 'must be {name, namespace} strings');
    }
    return new CelChainLink(
      checkString(a.name, `request.chain[${i}].name`, bounds, budget),
      checkString(a.namespace, `request.chain[${i}].namespace`, bounds, budget),
    );
  });
  out.push(self);
  return out;
}

/**
 * Build the activation. `defaultAgent` is used when the input does not carry
 * its own agent details (the common case: the policy set already knows the agent).
 */
export function buildActivation(
  input: PolicyInput,
  defaultAgent: CelAgent,
  bounds: PolicyBounds,
): BuildActivationResult {
  const budget: Budget = { bytes: 0, nodes: 0 };
  try {
    const r = input.request;
    if (!r || typeof r !== 'object') invalid('request', 'is required');
    if (r.kind !== 'mcp' && r.kind !== 'http' && r.kind !== 'postgresql') {
      invalid('request.kind', 'must be "mcp", "http" or "postgresql"');
    }
    if (typeof r.target !== 'string') invalid('request.target', 'must be a string');
    if (!(r.time instanceof Date) || Number.isNaN(r.time.getTime())) {
      invalid('request.time', 'must be a valid Date');
    }
    const agent = input.agent ? celAgent(input.agent) : defaultAgent;
    const request = new CelRequest(
      r.kind,
      checkString(r.target, 'request.target', bounds, budget),
      optionalString(r.tool, 'request.tool', bounds, budget),
      copyObject(r.args, 'request.args', bounds, budget),
      optionalString(
        typeof r.method === 'string' ? r.method.toUpperCase() : r.method,
        'request.method',
        bounds,
        budget,
      ),
      optionalString(r.path, 'request.path', bounds, budget),
      celTimestamp(r.time),
      celChain(r.chain, agent, bounds, budget),
    );
    const activation: CelActivation = {
      agent,
      user: celUser(input.user, bounds, budget),
      request,
      context: celContext(input.context, bounds, budget),
    };
    return { ok: true, activation };
  } catch (err) {
    if (err instanceof InputProblem) return { ok: false, problem: err };
    // Malformed input from a caller that bypassed the types: fail closed, never throw out of decide().
    return { ok: false, problem: new InputProblem('InvalidInput', 'request', 'malformed policy input') };
  }
}
