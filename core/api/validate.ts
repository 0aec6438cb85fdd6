/**
 * Runtime validation of Warden objects read from the API or the network.
 *
 * Every problem is returned at once, each with a field path in kubectl's notation
 * (`spec.rules[2].when[0].expression`) and a sentence saying what is wrong and what
 * a valid value looks like. Warnings are things that are valid but probably not what
 * was meant (a Deny rule with a credential block, a standing secret over http://).
 *
 * What needs cluster state — "this policy selects no agent", "the Secret is
 * missing" — is not validation: reconcilers report it in status conditions.
 */
import { API_VERSION } from '../constants.js';
import { parseDuration } from './duration.js';
import { LABEL_KEY, LABEL_VALUE } from './patterns.js';
import {
  type AccessPolicySpecValid,
  type AgentIdentitySpecValid,
  type CredentialProviderSpecValid,
  type KindWithStatus,
  SPEC_SCHEMAS,
  STANDING_SECRET_TYPES,
  STATUS_SCHEMAS,
  type ValidSpec,
  type ValidStatus,
  WARDEN_KINDS,
  type WardenKind,
} from './schemas.js';

/** One problem, located by its field path. */
export interface FieldIssue {
  /** kubectl-style path, e.g. `spec.rules[2].when[0].expression`; "" for the object itself. */
  path: string;
  message: string;
}

export type Validation<T> =
  | { ok: true; value: T; warnings: FieldIssue[] }
  | { ok: false; errors: FieldIssue[]; warnings: FieldIssue[] };

export interface ValidateOptions {
  /**
   * What to do with fields the schema does not know. `reject` (default) fails
   * closed: a field this code does not understand may be a restriction it would
   * silently ignore. `warn` drops them with a warning (e.g. for forward-compatible reads).
   */
  unknownFields?: 'reject' | 'warn';
}

/** A validated Warden object: the spec has every default filled in. */
export interface ValidObject<K extends WardenKind = WardenKind> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  spec: ValidSpec<K>;
  status?: unknown;
}

// --- paths and messages -----------------------------------------------------------

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** ['rules', 2, 'when', 0] → `rules[2].when[0]`; odd map keys are quoted: `labels["app.kubernetes.io/name"]`. */
export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      if (IDENTIFIER.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

/** The subset of a zod issue we read (zod's own type is a wide union). */
interface RawIssue {
  code: string;
  path: PropertyKey[];
  message: string;
  input?: unknown;
  expected?: string;
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  values?: unknown[];
  keys?: string[];
  format?: string;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

function expectedName(expected: string | undefined): string {
  switch (expected) {
    case 'object':
      return 'an object';
    case 'array':
      return 'a list';
    case 'int':
      return 'an integer';
    case 'record':
      return 'a map of strings';
    default:
      return `a ${expected ?? 'value of another type'}`;
  }
}

/** Turns one zod issue into our message. Values are never echoed: they may be long or sensitive. */
function messageOf(issue: RawIssue): string {
  const n = Number(issue.minimum ?? issue.maximum);
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined
        ? 'is required'
        : `must be ${expectedName(issue.expected)}, not ${typeName(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'string')
        return n === 1 ? 'must not be empty' : `must be at least ${n} characters long`;
      if (issue.origin === 'array') return `must have at least ${n} item${n === 1 ? '' : 's'}`;
      return `must be at least ${n}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${n} characters long`;
      if (issue.origin === 'array') return `must have at most ${n} items`;
      return `must be at most ${n}`;
    case 'invalid_value':
      return `must be one of ${(issue.values ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      // custom, invalid_format with our own "must be ..." messages.
      return issue.message;
  }
}

const ABSENT = new Set(['is required', 'must not be empty']);

/**
 * Maps zod issues to field issues; unknown keys become one issue per key at the
 * key's own path. A missing or empty field reports only that, not every other
 * check the empty value also fails.
 */
export function toFieldIssues(issues: readonly RawIssue[], prefix: string): FieldIssue[] {
  const out = mapIssues(issues, prefix);
  const absent = new Set(out.filter((i) => ABSENT.has(i.message)).map((i) => i.path));
  return out.filter((i) => !absent.has(i.path) || ABSENT.has(i.message));
}

function mapIssues(issues: readonly RawIssue[], prefix: string): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys ?? [])
        out.push({
          path: formatPath([...issue.path, key], prefix),
          message: 'unknown field (check the spelling against docs/crd-reference.md)',
        });
    } else out.push({ path: formatPath(issue.path, prefix), message: messageOf(issue) });
  }
  return out;
}

/** Deletes the unknown keys zod reported, in a copy, so a second parse can succeed. */
function withoutKeys(input: unknown, issues: readonly RawIssue[]): unknown {
  const copy = structuredClone(input);
  for (const issue of issues) {
    let node: unknown = copy;
    for (const seg of issue.path) node = (node as Record<PropertyKey, unknown> | undefined)?.[seg];
    if (node && typeof node === 'object')
      for (const key of issue.keys ?? []) delete (node as Record<string, unknown>)[key];
  }
  return copy;
}

// --- warnings (valid, but probably not what was meant) ----------------------------

const DAY_MS = 24 * 3_600_000;

export function agentIdentityWarnings(spec: AgentIdentitySpecValid): FieldIssue[] {
  const w: FieldIssue[] = [];
  const uc = spec.userContext;
  if (uc.mode === 'Forbidden' && (uc.trustedIssuers?.length ?? 0) > 0)
    w.push({
      path: 'spec.userContext.trustedIssuers',
      message: 'is ignored because userContext.mode is Forbidden (the agent always acts alone)',
    });
  for (const [key, value] of Object.entries(spec.attestation.requiredPodLabels ?? {})) {
    const path = formatPath(['attestation', 'requiredPodLabels', key], 'spec');
    if (!LABEL_KEY.test(key) || key.length > 317)
      w.push({
        path,
        message: 'is not a valid label key, so no pod can carry it and attestation always fails',
      });
    else if (!LABEL_VALUE.test(value))
      w.push({
        path,
        message: 'is not a valid label value, so no pod can carry it and attestation always fails',
      });
  }
  const ttl = parseDuration(spec.maxCredentialTTL);
  if (ttl !== undefined && ttl > DAY_MS)
    w.push({
      path: 'spec.maxCredentialTTL',
      message: 'allows credentials living longer than a day; keep them short-lived',
    });
  if (ttl === 0)
    w.push({ path: 'spec.maxCredentialTTL', message: 'is zero, so no credential can ever be issued' });
  return w;
}

export function accessPolicyWarnings(spec: AccessPolicySpecValid): FieldIssue[] {
  const w: FieldIssue[] = [];
  spec.rules.forEach((rule, i) => {
    const at = (...p: PropertyKey[]) => formatPath(['rules', i, ...p], 'spec');
    if (spec.effect === 'Deny' && rule.credential)
      w.push({ path: at('credential'), message: 'is ignored: a Deny rule never issues a credential' });
    if (rule.tools?.includes('*') && rule.tools.length > 1)
      w.push({
        path: at('tools'),
        message: '"*" already matches every tool; the other entries are redundant',
      });
    if (rule.http?.methods?.includes('*') && rule.http.methods.length > 1)
      w.push({
        path: at('http', 'methods'),
        message: '"*" already matches every method; the other entries are redundant',
      });
    const unconditional = !rule.tools && !rule.http && (rule.when?.length ?? 0) === 0;
    if (spec.effect === 'Allow' && rule.targets.includes('*') && unconditional)
      w.push({
        path: at(),
        message: 'allows every request to every CredentialProvider in the namespace without conditions',
      });
  });
  return w;
}

export function credentialProviderWarnings(spec: CredentialProviderSpecValid): FieldIssue[] {
  const w: FieldIssue[] = [];
  if (STANDING_SECRET_TYPES.includes(spec.type) && spec.target.url.startsWith('http://'))
    w.push({
      path: 'spec.target.url',
      message: `uses http://, so the ${spec.type} secret travels in clear text; use https://`,
    });
  for (const block of ['oauth2TokenExchange', 'oauth2ClientCredentials'] as const) {
    if (spec[block]?.tokenUrl.startsWith('http://'))
      w.push({
        path: `spec.${block}.tokenUrl`,
        message: 'uses http://, so the client secret travels in clear text; use https://',
      });
  }
  return w;
}

const WARNINGS: { [K in WardenKind]: (spec: ValidSpec<K>) => FieldIssue[] } = {
  AgentIdentity: agentIdentityWarnings,
  AccessPolicy: accessPolicyWarnings,
  CredentialProvider: credentialProviderWarnings,
  AuditRecord: () => [],
};

// --- entry points -------------------------------------------------------------------

/** AgentIdentity names become the value of the warden.dev/agent pod label (≤ 63 characters). */
export const MAX_AGENT_NAME = 63;

/** Validates the spec of a `kind`; paths start with `spec.`. */
export function validateSpec<K extends WardenKind>(
  kind: K,
  spec: unknown,
  options: ValidateOptions = {},
): Validation<ValidSpec<K>> {
  const schema = SPEC_SCHEMAS[kind];
  let input = spec;
  let result = schema.safeParse(input, { reportInput: true });
  const warnings: FieldIssue[] = [];
  if (!result.success && options.unknownFields === 'warn') {
    const unknown = result.error.issues.filter((i) => i.code === 'unrecognized_keys') as RawIssue[];
    if (unknown.length > 0) {
      warnings.push(
        ...toFieldIssues(unknown, 'spec').map((i) => ({ ...i, message: 'unknown field, ignored' })),
      );
      input = withoutKeys(input, unknown);
      result = schema.safeParse(input, { reportInput: true });
    }
  }
  if (!result.success)
    return { ok: false, errors: toFieldIssues(result.error.issues as RawIssue[], 'spec'), warnings };
  // The schema for K parses to ValidSpec<K>; TypeScript cannot follow K through the lookup.
  const value = result.data as ValidSpec<K>;
  return { ok: true, value, warnings: [...warnings, ...WARNINGS[kind](value)] };
}

/**
 * Validates the status of a `kind` (paths start with `status.`). Status is written
 * by the controller; readers (CLI, other replicas) check it like any API input.
 */
export function validateStatus<K extends KindWithStatus>(
  kind: K,
  status: unknown,
  options: ValidateOptions = {},
): Validation<ValidStatus<K>> {
  const schema = STATUS_SCHEMAS[kind];
  let result = schema.safeParse(status, { reportInput: true });
  const warnings: FieldIssue[] = [];
  if (!result.success && options.unknownFields === 'warn') {
    const unknown = result.error.issues.filter((i) => i.code === 'unrecognized_keys') as RawIssue[];
    if (unknown.length > 0) {
      warnings.push(
        ...toFieldIssues(unknown, 'status').map((i) => ({ ...i, message: 'unknown field, ignored' })),
      );
      result = schema.safeParse(withoutKeys(status, unknown), { reportInput: true });
    }
  }
  if (!result.success)
    return { ok: false, errors: toFieldIssues(result.error.issues as RawIssue[], 'status'), warnings };
  // The schema for K parses to ValidStatus<K>; TypeScript cannot follow K through the lookup.
  return { ok: true, value: result.data as ValidStatus<K>, warnings };
}

export const validateAgentIdentitySpec = (spec: unknown, options?: ValidateOptions) =>
  validateSpec('AgentIdentity', spec, options);
export const validateAccessPolicySpec = (spec: unknown, options?: ValidateOptions) =>
  validateSpec('AccessPolicy', spec, options);
export const validateCredentialProviderSpec = (spec: unknown, options?: ValidateOptions) =>
  validateSpec('CredentialProvider', spec, options);
export const validateAuditRecordSpec = (spec: unknown, options?: ValidateOptions) =>
  validateSpec('AuditRecord', spec, options);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates a whole object (apiVersion, kind, metadata.name, spec). The kind is
 * taken from the object; `expectedKind` rejects any other.
 */
export function validateObject<K extends WardenKind = WardenKind>(
  obj: unknown,
  options: ValidateOptions & { expectedKind?: K } = {},
): Validation<ValidObject<K>> {
  if (!isRecord(obj))
    return {
      ok: false,
      errors: [{ path: '', message: `must be an object, not ${typeName(obj)}` }],
      warnings: [],
    };
  const errors: FieldIssue[] = [];
  if (obj.apiVersion !== API_VERSION)
    errors.push({ path: 'apiVersion', message: `must be ${JSON.stringify(API_VERSION)}` });
  const kind = obj.kind;
  const known = typeof kind === 'string' && (WARDEN_KINDS as string[]).includes(kind);
  if (!known) errors.push({ path: 'kind', message: `must be one of ${WARDEN_KINDS.join(', ')}` });
  else if (options.expectedKind && kind !== options.expectedKind)
    errors.push({ path: 'kind', message: `must be ${options.expectedKind}, not ${kind}` });
  const metadata = obj.metadata;
  if (!isRecord(metadata)) errors.push({ path: 'metadata', message: 'is required' });
  else if (typeof metadata.name !== 'string' || metadata.name === '')
    errors.push({ path: 'metadata.name', message: 'is required' });
  else if (kind === 'AgentIdentity' && metadata.name.length > MAX_AGENT_NAME)
    errors.push({
      path: 'metadata.name',
      message: `must be at most ${MAX_AGENT_NAME} characters: agent pods carry it as a label value`,
    });
  if (!known) return { ok: false, errors, warnings: [] };
  const spec = validateSpec(kind as WardenKind, obj.spec, options);
  if (!spec.ok || errors.length > 0)
    return { ok: false, errors: [...errors, ...(spec.ok ? [] : spec.errors)], warnings: spec.warnings };
  // Checked above: apiVersion, kind and metadata.name have the right shape.
  const value = { ...obj, spec: spec.value } as unknown as ValidObject<K>;
  return { ok: true, value, warnings: spec.warnings };
}

/**
 * One line per issue, prefixed with the object, for logs, conditions and CLI output:
 * `AccessPolicy agents/support: spec.rules[0].when[1].name: must not be empty`.
 */
export function describeIssues(
  ref: { kind: string; namespace?: string; name?: string },
  issues: readonly FieldIssue[],
): string {
  const who = `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name ?? '(unnamed)'}`;
  return issues.map((i) => `${who}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n');
}
