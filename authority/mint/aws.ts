/**
 * AWS credentials by web identity federation (CredentialProvider type AWS):
 *
 *   1. the authority signs a short-lived Warden OIDC token for the agent (iss = Warden's issuer,
 *      sub = the agent, aud = spec.aws.audience, session tags from CEL in the
 *      `https://aws.amazon.com/tags` claim);
 *   2. it sends the token to STS (AssumeRoleWithWebIdentity, with the inline session policy from
 *      CEL) — STS verifies it against Warden's discovery document and JWKS;
 *   3. the temporary credentials (access key id, secret, session token) go to the broker, which
 *      signs the agent's requests with SigV4 (broker/sigv4.ts). The agent never sees them.
 *
 * Temporary credentials are cached here per (agent, user, provider, what was asked: role, policy,
 * tags, lifetime) until shortly before they expire, so brokers asking again (per rule, per
 * restart) cost no STS round trip; `dropAgent` forgets an agent's (the kill switch). Nothing here
 * logs, and no error carries a credential or the web identity token.
 */
import { createHash, randomBytes } from 'node:crypto';
import { AWS_SESSION_MIN_MS } from '../../core/constants.js';
import { agentSubject } from '../../core/identity/agent.js';
import { signJwt } from '../jwt.js';
import type { KeySource } from '../keystore.js';
import { compileClaim, evaluateClaims, mintPolicyInput, type NamedExpression } from './claims.js';
import { effectiveTtlMs } from './ttl.js';
import {
  type AwsSigningCredential,
  MintError,
  type Minter,
  type MintRequest,
  type MintResult,
  providerRef,
  upstreamText,
} from './types.js';

/** JOSE typ of the web identity token (an OIDC ID-token-shaped JWT, as STS expects). */
export const WEB_IDENTITY_TYP = 'JWT';
/** Lifetime of the web identity token: one STS call. */
export const WEB_IDENTITY_TTL_SECONDS = 60;
/** The claim AWS reads session tags from (IAM: "Passing session tags using AssumeRoleWithWebIdentity"). */
export const AWS_TAGS_CLAIM = 'https://aws.amazon.com/tags';
/** STS API version of AssumeRoleWithWebIdentity. */
export const STS_VERSION = '2011-06-15';
/** Cached credentials are handed out until this long before they expire. */
export const AWS_CACHE_MARGIN_MS = 60_000;
/** STS DurationSeconds upper bound (AWS: 12 h, and never more than the role's maximum). */
export const STS_MAX_DURATION_SECONDS = 43_200;
/** The packed inline session policy may not exceed 2048 characters (AWS). */
export const MAX_SESSION_POLICY_CHARS = 2048;
export const DEFAULT_STS_TIMEOUT_MS = 10_000;

/** AWS tag keys and values: letters, spaces, digits and `_ . : / = + - @` (IAM tag rules). */
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/** Temporary credentials as STS issued them. Secret: never logged, never in an error. */
export interface AwsTemporaryCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

/** The STS default endpoint of a region. */
export function defaultStsUrl(region: string): string {
  return `https://sts.${region}.amazonaws.com`;
}

/**
 * RoleSessionName (2-64 of `[\w+=,.@-]`): the agent's name, so the assumed-role ARN and CloudTrail
 * name the agent; characters outside the set (none in a DNS name) become `-`.
 */
export function roleSessionName(namespace: string, agent: string): string {
  return `warden.${namespace}.${agent}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
}

/** The non-secret id of a set of temporary credentials. */
export function awsCredentialId(accessKeyId: string): string {
  return `aws:${createHash('sha256').update(accessKeyId).digest('hex').slice(0, 16)}`;
}

interface ProviderPlan {
  readonly where: string;
  readonly policy?: NamedExpression;
  readonly tags: readonly NamedExpression[];
}

// Keyed by the spec object (the authority's cache replaces it on every change), like jwt.ts.
const plans = new WeakMap<object, ProviderPlan>();

function providerPlan(provider: MintRequest['provider']): ProviderPlan {
  const hit = plans.get(provider.spec);
  if (hit) return hit;
  const where = providerRef(provider);
  const aws = provider.spec.aws;
  const tags: NamedExpression[] = [];
  for (const [name, source] of Object.entries(aws?.sessionTags ?? {})) {
    if (source === undefined) continue;
    const field = `${where} spec.aws.sessionTags.${name}`;
    if (name.length < 1 || name.length > 128 || !TAG_TEXT.test(name) || /^aws:/i.test(name)) {
      throw new MintError(
        'InvalidProvider',
        `${field}: '${name.slice(0, 64)}' is not a valid session tag key (1-128 letters, digits, spaces or _ . : / = + - @, not starting with aws:)`,
      );
    }
    tags.push({ name, field, expression: compileClaim(source, field) });
  }
  const policyField = `${where} spec.aws.sessionPolicy`;
  const plan: ProviderPlan = {
    where,
    tags,
    ...(aws?.sessionPolicy
      ? {
          policy: {
            name: 'sessionPolicy',
            field: policyField,
            expression: compileClaim(aws.sessionPolicy, policyField),
          },
        }
      : {}),
  };
  plans.set(provider.spec, plan);
  return plan;
}

/** What one AssumeRoleWithWebIdentity asks for, computed from the request (pure but for CEL). */
export interface AssumeRolePlan {
  readonly roleArn: string;
  readonly region: string;
  readonly service: string;
  readonly stsUrl: string;
  readonly audience: string;
  /** DurationSeconds sent to STS (900..43200). */
  readonly durationSeconds: number;
  /** How long the broker may use the credentials (≤ the STS lifetime). */
  readonly useForMs: number;
  readonly sessionPolicy?: string;
  readonly tags: Readonly<Record<string, string>>;
}

export function assumeRolePlan(req: MintRequest, now: Date): AssumeRolePlan {
  const aws = req.provider.spec.aws;
  const where = providerRef(req.provider);
  if (!aws) throw new MintError('InvalidProvider', `${where}: spec.aws is required for type AWS`);
  const plan = providerPlan(req.provider);
  const useForMs = effectiveTtlMs({
    policy: req.policy.ttl,
    provider: { value: aws.sessionDuration ?? '1h', field: `${where} spec.aws.sessionDuration` },
    agentMax: req.agent.maxCredentialTTL,
  });
  // STS refuses less than 15 minutes; a shorter use is enforced by Warden (the broker drops the
  // credentials at useFor), not by STS — the session itself lives DurationSeconds.
  const durationSeconds = Math.min(
    STS_MAX_DURATION_SECONDS,
    Math.max(AWS_SESSION_MIN_MS / 1000, Math.ceil(useForMs / 1000)),
  );
  const expressions = plan.policy ? [plan.policy, ...plan.tags] : plan.tags;
  const values =
    expressions.length > 0
      ? evaluateClaims(expressions, mintPolicyInput(req, now), NO_RESERVED_NAMES)
      : ({} as Record<string, unknown>);
  let sessionPolicy: string | undefined;
  if (plan.policy) {
    sessionPolicy = JSON.stringify(policyDocument(values.sessionPolicy, plan.policy.field));
    if (sessionPolicy.length > MAX_SESSION_POLICY_CHARS) {
      throw new MintError(
        'InvalidClaim',
        `${plan.policy.field}: the policy document is ${sessionPolicy.length} characters as JSON; STS accepts at most ${MAX_SESSION_POLICY_CHARS}`,
      );
    }
  }
  const tags: Record<string, string> = {};
  for (const t of plan.tags) {
    const v = values[t.name];
    if (typeof v !== 'string' || v.length > 256 || !TAG_TEXT.test(v)) {
      throw new MintError(
        'InvalidClaim',
        `${t.field}: must evaluate to a string of at most 256 letters, digits, spaces or _ . : / = + - @ (a session tag value)`,
      );
    }
    tags[t.name] = v;
  }
  return {
    roleArn: aws.roleArn,
    region: aws.region,
    service: aws.service ?? 's3',
    stsUrl: aws.stsUrl ?? defaultStsUrl(aws.region),
    audience: aws.audience ?? 'sts.amazonaws.com',
    durationSeconds,
    useForMs,
    ...(sessionPolicy !== undefined ? { sessionPolicy } : {}),
    tags,
  };
}

const NO_RESERVED_NAMES: ReadonlySet<string> = new Set();

/**
 * The session policy as CEL produced it: a map (CEL map literals need dyn() around values of
 * different types), or a string holding the JSON document (easier to write, built with `+`).
 */
function policyDocument(value: unknown, field: string): Record<string, unknown> {
  let doc = value;
  if (typeof value === 'string') {
    try {
      doc = JSON.parse(value);
    } catch {
      throw new MintError(
        'InvalidClaim',
        `${field}: evaluated to a string that is not JSON (an IAM policy document)`,
      );
    }
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new MintError(
      'InvalidClaim',
      `${field}: must evaluate to an IAM policy document: a map, or a string holding its JSON ('{"Version": "2012-10-17", "Statement": [...]}')`,
    );
  }
  return doc as Record<string, unknown>;
}

/** The web identity token's claims (pure: time and jti are inputs). */
export function webIdentityClaims(
  req: MintRequest,
  plan: AssumeRolePlan,
  issuer: string,
  now: Date,
  jti: string,
): Record<string, unknown> {
  const iat = Math.floor(now.getTime() / 1000);
  const claims: Record<string, unknown> = {
    iss: issuer,
    // The role is assumed by the agent: trust policies pin `sub` to it. The human of a blended
    // call reaches AWS through the session tags and policy the provider computes from `user`.
    sub: agentSubject(req.agent.namespace, req.agent.name),
    aud: plan.audience,
    iat,
    nbf: iat,
    exp: iat + WEB_IDENTITY_TTL_SECONDS,
    jti,
  };
  if (Object.keys(plan.tags).length > 0) {
    claims[AWS_TAGS_CLAIM] = {
      principal_tags: Object.fromEntries(Object.entries(plan.tags).map(([k, v]) => [k, [v]])),
    };
  }
  return claims;
}

/** One XML element's text (first occurrence), entities decoded; undefined when absent. */
export function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}(?:\\s[^>]*)?>([^<]*)</${tag}>`).exec(xml);
  if (!m) return undefined;
  return m[1]!.replace(/&(lt|gt|amp|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCodePoint(e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)));
    }
  });
}

/** Upstream text for an error: printable ASCII, bounded. */
const clean = (s: string) => upstreamText(s, 300);

/** Reads an AssumeRoleWithWebIdentity answer: the credentials, or a MintError naming the STS error. */
export function parseStsResponse(
  status: number,
  body: string,
  where: string,
  url: string,
): AwsTemporaryCredentials {
  if (status < 200 || status >= 300) {
    const code = xmlText(body, 'Code');
    const message = xmlText(body, 'Message');
    const detail = code ? `${clean(code)}${message ? `: ${clean(message)}` : ''}` : 'no STS error body';
    throw new MintError(
      'UpstreamRejected',
      `${where}: STS ${url} refused AssumeRoleWithWebIdentity with ${status} (${detail}); check the role's trust policy (issuer, aud, sub) and spec.aws.roleArn`,
    );
  }
  const block = /<Credentials>([\s\S]*?)<\/Credentials>/.exec(body)?.[1];
  const accessKeyId = block && xmlText(block, 'AccessKeyId');
  const secretAccessKey = block && xmlText(block, 'SecretAccessKey');
  const sessionToken = block && xmlText(block, 'SessionToken');
  const expiration = block ? Date.parse(xmlText(block, 'Expiration') ?? '') : Number.NaN;
  if (!accessKeyId || !secretAccessKey || !sessionToken || !Number.isFinite(expiration)) {
    throw new MintError(
      'UpstreamRejected',
      `${where}: STS ${url} answered ${status} without Credentials (AccessKeyId, SecretAccessKey, SessionToken, Expiration)`,
    );
  }
  return { accessKeyId, secretAccessKey, sessionToken, expiration: new Date(expiration) };
}

export interface AwsMinterOptions {
  /** Warden's issuer URL: STS fetches <issuer>/.well-known/openid-configuration and the JWKS. */
  readonly issuer: string;
  readonly keys: KeySource;
  readonly now?: () => Date;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
  /** Cached credential sets kept at most (oldest dropped first). */
  readonly maxCached?: number;
}

interface CacheEntry {
  readonly agent: string;
  readonly credential: AwsSigningCredential;
}

export class AwsMinter implements Minter {
  readonly type = 'AWS' as const;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly pending = new Map<string, Promise<AwsSigningCredential>>();
  /** STS calls made (a cache hit makes none); tests and benchmarks read it. */
  stsCalls = 0;

  constructor(private readonly opts: AwsMinterOptions) {}

  async mint(req: MintRequest): Promise<MintResult> {
    const now = this.opts.now?.() ?? new Date();
    const plan = assumeRolePlan(req, now);
    const agent = `${req.agent.namespace}/${req.agent.name}`;
    const user = req.user?.present ? `${req.user.issuer}\u0000${req.user.sub}` : '-';
    const key = createHash('sha256')
      .update(
        JSON.stringify([
          agent,
          user,
          `${req.provider.namespace}/${req.provider.name}`,
          plan.roleArn,
          plan.stsUrl,
          plan.audience,
          plan.region,
          plan.service,
          plan.durationSeconds,
          plan.useForMs,
          plan.sessionPolicy ?? null,
          plan.tags,
        ]),
      )
      .digest('base64url');
    const credential = await this.cached(key, agent, now, () => this.assumeRole(req, plan, now));
    // "Revoke" can only forget: an STS session lives until it expires unless the role denies
    // sessions issued before a time (docs/aws.md); revocation.ts reports it as such.
    return {
      credential,
      revoke: async () => {
        this.dropAgent(req.agent.namespace, req.agent.name);
      },
    };
  }

  /** Forgets every cached credential set of an agent (kill switch); returns how many. */
  dropAgent(namespace: string, agent: string): number {
    const who = `${namespace}/${agent}`;
    let dropped = 0;
    for (const [key, entry] of this.cache) {
      if (entry.agent === who) {
        this.cache.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** Credential sets cached now. */
  get cachedCount(): number {
    return this.cache.size;
  }

  private async cached(
    key: string,
    agent: string,
    now: Date,
    load: () => Promise<AwsSigningCredential>,
  ): Promise<AwsSigningCredential> {
    const hit = this.cache.get(key);
    if (hit && hit.credential.expiresAt.getTime() - AWS_CACHE_MARGIN_MS > now.getTime())
      return hit.credential;
    if (hit) this.cache.delete(key);
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const p = load().then(
      (credential) => {
        this.pending.delete(key);
        const max = this.opts.maxCached ?? 10_000;
        while (this.cache.size >= max) {
          const oldest = this.cache.keys().next().value;
          if (oldest === undefined) break;
          this.cache.delete(oldest);
        }
        this.cache.set(key, { agent, credential });
        return credential;
      },
      (err: unknown) => {
        this.pending.delete(key);
        throw err;
      },
    );
    this.pending.set(key, p);
    return p;
  }

  private async assumeRole(req: MintRequest, plan: AssumeRolePlan, now: Date): Promise<AwsSigningCredential> {
    const where = providerRef(req.provider);
    const token = signJwt(
      this.opts.keys.signingKey(),
      WEB_IDENTITY_TYP,
      webIdentityClaims(req, plan, this.opts.issuer, now, randomBytes(16).toString('base64url')),
    );
    const form = new URLSearchParams({
      Action: 'AssumeRoleWithWebIdentity',
      Version: STS_VERSION,
      RoleArn: plan.roleArn,
      RoleSessionName: roleSessionName(req.agent.namespace, req.agent.name),
      WebIdentityToken: token,
      DurationSeconds: String(plan.durationSeconds),
      ...(plan.sessionPolicy !== undefined ? { Policy: plan.sessionPolicy } : {}),
    });
    this.stsCalls++;
    let status: number;
    let body: string;
    try {
      const res = await (this.opts.fetch ?? fetch)(plan.stsUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/xml' },
        body: form.toString(),
        redirect: 'error',
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? DEFAULT_STS_TIMEOUT_MS),
      });
      status = res.status;
      body = await res.text();
    } catch (err) {
      const cause = (err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message;
      throw new MintError('UpstreamUnreachable', `${where}: STS ${plan.stsUrl} unreachable: ${clean(cause)}`);
    }
    // An STS that quotes the token back in its error must not carry it into ours.
    const creds = parseStsResponse(status, body.split(token).join('[token]'), where, plan.stsUrl);
    const expiresAt = Math.min(creds.expiration.getTime(), now.getTime() + plan.useForMs);
    return {
      kind: 'aws',
      value: {
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        sessionToken: creds.sessionToken,
        region: plan.region,
        service: plan.service,
      },
      expiresAt: new Date(expiresAt),
      id: awsCredentialId(creds.accessKeyId),
      standing: false,
    };
  }
}
