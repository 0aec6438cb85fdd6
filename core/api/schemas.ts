/**
 * zod schemas for the spec of each Warden kind, mirroring crds/*.yaml: the same
 * fields, bounds, patterns, defaults and cross-field (CEL) rules. The API server
 * enforces the CRDs; these schemas let code re-check anything it reads from the API
 * or the network (policy snapshots, CLI input) and get typed, defaulted values.
 *
 * Kept consistent with the CRDs by schemas.agreement.test.ts (samples and bad
 * inputs must get the same verdict from both) and by compile-time checks that the
 * parsed types are assignable to the generated types.
 *
 * Objects are strict: an unknown field is an issue (validate.ts can downgrade it
 * to a warning). Cross-field rules run even when a field has an issue, so every
 * problem is reported at once; they therefore check types defensively.
 */
import { z } from 'zod';
import {
  AWS_SESSION_MAX_MS,
  AWS_SESSION_MIN_MS,
  DEFAULT_AWS_AUDIENCE,
  DEFAULT_BROKER_AUDIENCE,
} from '../constants.js';
import { parseSigningKey } from '../identity/cosign.js';
import { parseDuration } from './duration.js';
import {
  AUDIT_ENTRY_ID,
  AWS_REGION,
  AWS_SERVICE,
  CONDITION_NAME,
  CONDITION_REASON,
  CONDITION_TYPE,
  DNS_LABEL,
  DNS_SUBDOMAIN,
  DURATION,
  HEADER_NAME,
  HTTP_URL,
  HTTPS_URL,
  IMAGE_DIGEST,
  type NamedPattern,
  PATH_GLOB,
  PEM_PUBLIC_KEY,
  PG_ROLE,
  QUOTA_WINDOW,
  ROLE_ARN,
  SECRET_KEY,
  SHA256_HEX,
  SHA256_HEX_OR_EMPTY,
  TARGET,
  TARGET_URL,
} from './patterns.js';

// --- building blocks -------------------------------------------------------------

/** A string of bounded length (CRD minLength/maxLength). */
const text = (max: number, min = 0) => z.string().min(min).max(max);

/** A string of bounded length matching a CRD pattern. */
const matching = (pattern: NamedPattern, max: number, min = 0) =>
  text(max, min).regex(pattern.re, `must be ${pattern.description}`);

const duration = () => matching(DURATION, 32);
const dateTime = () =>
  z.iso.datetime({ offset: true, error: 'must be an RFC 3339 date-time (e.g. 2026-01-02T15:04:05Z)' });
const objectName = () => matching(DNS_SUBDOMAIN, 253, 1);
const secretKey = () => matching(SECRET_KEY, 253, 1);

/** x-kubernetes-list-type: set — the API server rejects duplicates, so do we. */
function set<T extends z.ZodType<string>>(item: T, maxItems: number, minItems = 0) {
  return z
    .array(item)
    .min(minItems)
    .max(maxItems)
    .superRefine((values, ctx) => {
      const seen = new Set<unknown>();
      values.forEach((v, i) => {
        if (seen.has(v))
          ctx.addIssue({ code: 'custom', path: [i], message: `duplicate value ${JSON.stringify(v)}` });
        seen.add(v);
      });
    });
}

/** x-kubernetes-list-type: map — items are unique by `key`. */
function listMap<S extends z.ZodType<Record<string, unknown>>>(item: S, key: string, maxItems: number) {
  return z
    .array(item)
    .max(maxItems)
    .superRefine((values, ctx) => {
      const seen = new Set<unknown>();
      values.forEach((v, i) => {
        const k = (v as Record<string, unknown>)[key];
        if (k === undefined) return;
        if (seen.has(k))
          ctx.addIssue({ code: 'custom', path: [i, key], message: `duplicate ${key} ${JSON.stringify(k)}` });
        seen.add(k);
      });
    });
}

/** A string→string map with at most `maxEntries` entries (CRD maxProperties). */
function boundedMap(value: z.ZodType<string>, maxEntries: number) {
  return z.record(z.string(), value).superRefine((map, ctx) => {
    const n = Object.keys(map).length;
    if (n > maxEntries)
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `must have at most ${maxEntries} entries (has ${n})`,
      });
  });
}

const celExpression = () => text(4096, 1);

// --- AgentIdentity ----------------------------------------------------------------

export const USER_CONTEXT_MODES = ['Optional', 'Required', 'Forbidden'] as const;

export const trustedIssuerSchema = z.strictObject({
  issuer: matching(HTTPS_URL, 2048, 9),
  jwksUri: matching(HTTPS_URL, 2048).optional(),
  audiences: set(text(256, 1), 8, 1),
  groupsClaim: text(128, 1).default('groups'),
  departmentClaim: text(128, 1).default('department'),
  claims: set(text(128, 1), 32).optional(),
});

export const userContextSchema = z
  .strictObject({
    mode: z.enum(USER_CONTEXT_MODES).default('Optional'),
    trustedIssuers: listMap(trustedIssuerSchema, 'issuer', 8).optional(),
  })
  .superRefine((uc, ctx) => {
    if (uc.mode === 'Required' && !(Array.isArray(uc.trustedIssuers) && uc.trustedIssuers.length > 0))
      ctx.addIssue({
        code: 'custom',
        path: ['trustedIssuers'],
        message: 'needs at least one issuer because userContext.mode is Required',
      });
  });

/**
 * spec.attestation.images.signatures.keys[]: the CRD checks the PEM shape; the key inside (valid
 * DER, ECDSA P-256) only code can check, so it is an issue here and a refusal at attestation.
 */
export const signingKeySchema = z
  .strictObject({ name: matching(DNS_LABEL, 63, 1), publicKey: matching(PEM_PUBLIC_KEY, 4096, 1) })
  .superRefine((k, ctx) => {
    if (typeof k.publicKey !== 'string' || !PEM_PUBLIC_KEY.re.test(k.publicKey)) return;
    const parsed = parseSigningKey({ name: String(k.name), publicKey: k.publicKey });
    if (!parsed.ok) ctx.addIssue({ code: 'custom', path: ['publicKey'], message: parsed.problem });
  });

export const attestationSchema = z.strictObject({
  audience: text(253, 1).default(DEFAULT_BROKER_AUDIENCE),
  tokenExpirationSeconds: z.int().min(600).max(86400).default(3600),
  requiredPodLabels: boundedMap(text(63), 32).optional(),
  allowedImages: set(text(512, 1), 32).optional(),
  images: z
    .strictObject({
      digests: set(matching(IMAGE_DIGEST, 71), 64).optional(),
      signatures: z.strictObject({ keys: listMap(signingKeySchema, 'name', 8).optional() }).optional(),
    })
    .optional(),
});

export const CIRCUIT_BREAKER_ACTIONS = ['Suspend', 'Alert'] as const;

export const circuitBreakerSchema = z
  .strictObject({
    maxDenialsPerMinute: z.int().min(1).max(1_000_000).optional(),
    maxCallsPerMinute: z.int().min(1).max(1_000_000).optional(),
    maxDistinctToolsPerMinute: z.int().min(1).max(10_000).optional(),
    action: z.enum(CIRCUIT_BREAKER_ACTIONS).default('Suspend'),
  })
  .superRefine((cb, ctx) => {
    if (
      cb.maxDenialsPerMinute === undefined &&
      cb.maxCallsPerMinute === undefined &&
      cb.maxDistinctToolsPerMinute === undefined
    )
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          'set at least one of maxDenialsPerMinute, maxCallsPerMinute, maxDistinctToolsPerMinute (or remove circuitBreaker)',
      });
    if (
      typeof cb.maxDenialsPerMinute === 'number' &&
      typeof cb.maxCallsPerMinute === 'number' &&
      cb.maxDenialsPerMinute > cb.maxCallsPerMinute
    )
      ctx.addIssue({
        code: 'custom',
        path: ['maxDenialsPerMinute'],
        message: 'must not exceed maxCallsPerMinute (every denial is a call, so it could never trip first)',
      });
  });

/** AgentIdentity spec.audit.mode: what a call whose audit entry cannot be kept gets (docs/faults.md). */
export const AUDIT_MODES = ['Required', 'BestEffort'] as const;

export const agentIdentitySpecSchema = z.strictObject({
  serviceAccountName: objectName(),
  suspended: z.boolean().default(false),
  suspendReason: text(1024).optional(),
  attestation: attestationSchema.prefault({}),
  userContext: userContextSchema.prefault({}),
  maxCredentialTTL: duration().default('1h'),
  circuitBreaker: circuitBreakerSchema.optional(),
  audit: z.strictObject({ mode: z.enum(AUDIT_MODES).default('BestEffort') }).prefault({}),
});

// --- AccessPolicy -----------------------------------------------------------------

export const POLICY_EFFECTS = ['Allow', 'Deny'] as const;
export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  '*',
] as const;

/** AccessPolicy rules[].limits[].per: what one quota count covers. */
export const QUOTA_SCOPES = ['agent', 'user', 'agent+user'] as const;

export const whenConditionSchema = z.strictObject({
  name: matching(CONDITION_NAME, 63, 1),
  expression: celExpression(),
});

export const accessPolicyRuleSchema = z
  .strictObject({
    targets: set(matching(TARGET, 253, 1), 32, 1),
    tools: set(text(256, 1), 64).optional(),
    http: z
      .strictObject({
        methods: set(z.enum(HTTP_METHODS), 10).optional(),
        paths: set(matching(PATH_GLOB, 1024, 1), 64).optional(),
      })
      .optional(),
    when: listMap(whenConditionSchema, 'name', 16).optional(),
    limits: z
      .array(
        z.strictObject({
          per: z.enum(QUOTA_SCOPES),
          calls: z.int().min(1).max(1_000_000_000),
          window: matching(QUOTA_WINDOW, 8),
        }),
      )
      .max(4)
      .optional(),
    credential: z
      .strictObject({
        ttl: duration().optional(),
        scopes: set(text(256, 1), 32).optional(),
        claims: boundedMap(celExpression(), 32).optional(),
      })
      .optional(),
  })
  .superRefine((rule, ctx) => {
    if (Array.isArray(rule.targets) && rule.targets.includes('*') && rule.targets.length > 1)
      ctx.addIssue({
        code: 'custom',
        path: ['targets'],
        message: `"*" already matches every CredentialProvider; list it alone`,
      });
  });

export const accessPolicySpecSchema = z
  .strictObject({
    description: text(1024).optional(),
    agentSelector: z
      .strictObject({
        names: set(objectName(), 100).optional(),
        matchLabels: boundedMap(text(63), 32).optional(),
      })
      .optional(),
    effect: z.enum(POLICY_EFFECTS).default('Allow'),
    rules: z.array(accessPolicyRuleSchema).min(1).max(64),
  })
  .superRefine((spec, ctx) => {
    if (spec.effect !== 'Deny' || !Array.isArray(spec.rules)) return;
    spec.rules.forEach((r, i) => {
      if (r && typeof r === 'object' && 'limits' in r && r.limits !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'limits'],
          message: 'quotas apply to Allow rules only; a Deny rule already denies every call it matches',
        });
    });
  });

// --- CredentialProvider -----------------------------------------------------------

export const PROVIDER_TYPES = [
  'JWT',
  'OAuth2TokenExchange',
  'OAuth2ClientCredentials',
  'PostgreSQL',
  'APIKey',
  'BasicAuth',
  'AWS',
] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];
export const PROTOCOLS = ['MCP', 'HTTP', 'PostgreSQL'] as const;
/** spec.jwt.senderConstraint: a bearer JWT, or one bound to the broker's key (RFC 9449 DPoP). */
export const SENDER_CONSTRAINTS = ['None', 'DPoP'] as const;
/** inject.format values a DPoP provider accepts: the token always travels as `Authorization: DPoP <token>`. */
export const DPOP_INJECT_FORMATS: readonly string[] = ['Bearer {token}', 'DPoP {token}'];

/** The spec field holding each type's settings; exactly that one must be set. */
export const TYPE_BLOCK = {
  JWT: 'jwt',
  OAuth2TokenExchange: 'oauth2TokenExchange',
  OAuth2ClientCredentials: 'oauth2ClientCredentials',
  PostgreSQL: 'postgresql',
  APIKey: 'apiKey',
  BasicAuth: 'basicAuth',
  AWS: 'aws',
} as const satisfies Record<ProviderType, string>;
const TYPE_BLOCKS = Object.values(TYPE_BLOCK);

/** Types whose credential is a long-lived secret rather than minted per request. */
export const STANDING_SECRET_TYPES: readonly ProviderType[] = ['APIKey', 'BasicAuth'];

export const secretKeyRefSchema = z.strictObject({ name: objectName(), key: secretKey() });
export const usernamePasswordSecretRefSchema = z.strictObject({
  name: objectName(),
  usernameKey: secretKey().default('username'),
  passwordKey: secretKey().default('password'),
});

const oauth2Common = {
  tokenUrl: matching(HTTP_URL, 2048),
  clientId: text(512, 1),
  clientSecretRef: secretKeyRefSchema,
  scopes: set(text(256, 1), 32).optional(),
  revocationUrl: matching(HTTP_URL, 2048).optional(),
};

export const credentialProviderSpecSchema = z
  .strictObject({
    target: z.strictObject({
      url: matching(TARGET_URL, 2048, 1),
      protocol: z.enum(PROTOCOLS).default('MCP'),
    }),
    type: z.enum(PROVIDER_TYPES),
    jwt: z
      .strictObject({
        audience: text(2048).optional(),
        defaultTTL: duration().default('5m'),
        senderConstraint: z.enum(SENDER_CONSTRAINTS).default('None'),
        claims: boundedMap(celExpression(), 32).optional(),
      })
      .optional(),
    oauth2TokenExchange: z.strictObject({ ...oauth2Common, audience: text(2048).optional() }).optional(),
    oauth2ClientCredentials: z.strictObject(oauth2Common).optional(),
    postgresql: z
      .strictObject({
        host: text(253, 1),
        port: z.int().min(1).max(65535).default(5432),
        database: text(63, 1),
        adminSecretRef: usernamePasswordSecretRefSchema,
        grantRoles: set(matching(PG_ROLE, 63, 1), 16, 1),
        roleTTL: duration().default('15m'),
      })
      .optional(),
    apiKey: z.strictObject({ secretRef: secretKeyRefSchema }).optional(),
    basicAuth: z.strictObject({ secretRef: usernamePasswordSecretRefSchema }).optional(),
    aws: z
      .strictObject({
        roleArn: matching(ROLE_ARN, 2048, 1),
        region: matching(AWS_REGION, 32, 1),
        service: matching(AWS_SERVICE, 63, 1).default('s3'),
        stsUrl: matching(HTTP_URL, 2048).optional(),
        audience: text(2048, 1).default(DEFAULT_AWS_AUDIENCE),
        sessionDuration: duration()
          .refine((d) => {
            const ms = parseDuration(d);
            return ms === undefined || (ms >= AWS_SESSION_MIN_MS && ms <= AWS_SESSION_MAX_MS);
          }, 'must be between 15m and 12h (the STS DurationSeconds range)')
          .default('1h'),
        sessionPolicy: celExpression().optional(),
        sessionTags: boundedMap(celExpression(), 50).optional(),
      })
      .optional(),
    inject: z
      .strictObject({
        header: matching(HEADER_NAME, 256, 1).default('Authorization'),
        format: text(256, 7)
          .refine((f) => f.includes('{token}'), 'must contain the {token} placeholder')
          .default('Bearer {token}'),
      })
      .prefault({}),
  })
  .superRefine((spec, ctx) => {
    const expected = (TYPE_BLOCK as Record<string, string | undefined>)[spec.type];
    const record = spec as Record<string, unknown>;
    if (expected && record[expected] === undefined)
      ctx.addIssue({
        code: 'custom',
        path: [expected],
        message: `is required because spec.type is ${spec.type}`,
      });
    // With an invalid spec.type the enum issue says it all; block checks would only add noise.
    for (const block of expected ? TYPE_BLOCKS : []) {
      if (block !== expected && record[block] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [block],
          message: `must not be set when spec.type is ${spec.type}; set exactly one type block, spec.${expected}`,
        });
    }
    const protocol = spec.target?.protocol;
    if (protocol === 'PostgreSQL' && spec.type !== 'PostgreSQL')
      ctx.addIssue({
        code: 'custom',
        path: ['target', 'protocol'],
        message: 'PostgreSQL needs spec.type PostgreSQL',
      });
    if (spec.type === 'PostgreSQL' && protocol !== undefined && protocol !== 'PostgreSQL')
      ctx.addIssue({
        code: 'custom',
        path: ['target', 'protocol'],
        message: `must be PostgreSQL because spec.type is PostgreSQL (is ${protocol})`,
      });
    if (spec.type === 'AWS' && protocol !== undefined && protocol !== 'HTTP')
      ctx.addIssue({
        code: 'custom',
        path: ['target', 'protocol'],
        message: `must be HTTP because spec.type is AWS (is ${protocol}): the broker signs the agent's HTTP requests with SigV4`,
      });
    if (spec.jwt?.senderConstraint === 'DPoP' && spec.inject) {
      const { header, format } = spec.inject;
      if (header !== 'Authorization' || !DPOP_INJECT_FORMATS.includes(format))
        ctx.addIssue({
          code: 'custom',
          path: ['inject'],
          message:
            "spec.jwt.senderConstraint DPoP sends the token as 'Authorization: DPoP <token>' (RFC 9449): leave spec.inject unset, or set header Authorization and format 'DPoP {token}'",
        });
    }
    const url = spec.target?.url;
    if (typeof url === 'string' && protocol !== undefined) {
      const ok = protocol === 'PostgreSQL' ? /^postgres(ql)?:\/\//.test(url) : /^https?:\/\//.test(url);
      if (!ok)
        ctx.addIssue({
          code: 'custom',
          path: ['target', 'url'],
          message:
            protocol === 'PostgreSQL'
              ? 'must be a postgres:// URL for protocol PostgreSQL'
              : `must be an http(s):// URL for protocol ${protocol}`,
        });
    }
  });

// --- AuditRecord ------------------------------------------------------------------

export const AUDIT_ENTRY_KINDS = [
  'Decision',
  'Session',
  'Credential',
  'Revocation',
  'Suspension',
  'Admission',
  'CircuitBreaker',
] as const;

export const auditReasonSchema = z.strictObject({
  policy: text(253).optional(),
  rule: z.int().min(0).max(63).optional(),
  condition: text(63).optional(),
  message: text(1024).optional(),
});

export const auditReplaySchema = z.strictObject({
  kind: z.enum(['mcp', 'http', 'postgresql', 'session']),
  policyDecision: z.enum(POLICY_EFFECTS),
  policyReason: text(64).optional(),
  args: text(2048).optional(),
  withheld: z.array(text(256)).max(16).optional(),
  user: z
    .strictObject({
      sub: text(256),
      issuer: text(256).optional(),
      groups: z.array(text(128)).max(32).optional(),
      department: text(128).optional(),
      claims: text(512).optional(),
    })
    .optional(),
  context: z
    .strictObject({
      purpose: text(256).optional(),
      ticketId: text(256).optional(),
      model: text(256).optional(),
      chainStep: z.int().min(0).optional(),
      geo: text(256).optional(),
    })
    .optional(),
});

export const auditEntrySchema = z.strictObject({
  id: matching(AUDIT_ENTRY_ID, 40).optional(),
  time: dateTime(),
  kind: z.enum(AUDIT_ENTRY_KINDS),
  decision: z.enum(POLICY_EFFECTS).optional(),
  pod: text(253).optional(),
  user: text(512).optional(),
  userIssuer: text(512).optional(),
  chain: z
    .array(z.strictObject({ name: text(253), namespace: text(63) }))
    .max(8)
    .optional(),
  claimedChain: z
    .array(z.strictObject({ name: text(253), namespace: text(63) }))
    .max(8)
    .optional(),
  target: text(253).optional(),
  tool: text(256).optional(),
  method: text(16).optional(),
  path: text(2048).optional(),
  reasons: z.array(auditReasonSchema).max(16).optional(),
  credentialId: text(256).optional(),
  requestId: text(128).optional(),
  policy: text(253).optional(),
  message: text(1024).optional(),
  replay: auditReplaySchema.optional(),
});

export const auditRecordSpecSchema = z
  .strictObject({
    agent: objectName(),
    sequence: z.int().min(0),
    previousDigest: matching(SHA256_HEX_OR_EMPTY, 64),
    digest: matching(SHA256_HEX, 64, 64),
    startTime: dateTime(),
    endTime: dateTime(),
    entries: z.array(auditEntrySchema).min(1).max(500),
  })
  .superRefine((spec, ctx) => {
    if (typeof spec.sequence === 'number' && typeof spec.previousDigest === 'string') {
      if (spec.sequence === 0 && spec.previousDigest !== '')
        ctx.addIssue({ code: 'custom', path: ['previousDigest'], message: 'must be empty for sequence 0' });
      if (spec.sequence > 0 && spec.previousDigest === '')
        ctx.addIssue({
          code: 'custom',
          path: ['previousDigest'],
          message: "must be the previous record's digest for a sequence above 0",
        });
    }
    const start = Date.parse(spec.startTime);
    const end = Date.parse(spec.endTime);
    if (Number.isFinite(start) && Number.isFinite(end) && end < start)
      ctx.addIssue({ code: 'custom', path: ['endTime'], message: 'must not be before startTime' });
  });

// --- status (written by the controller, read by the CLI and other replicas) ----------

const nonNegative = () => z.int().min(0);

/** metav1.Condition, as every Warden status carries it. */
export const conditionSchema = z.strictObject({
  type: matching(CONDITION_TYPE, 316, 1),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: matching(CONDITION_REASON, 1024, 1),
  message: text(32768),
  observedGeneration: nonNegative().optional(),
  lastTransitionTime: dateTime(),
});

const conditions = () => listMap(conditionSchema, 'type', 16).optional();

export const agentIdentityStatusSchema = z.strictObject({
  observedGeneration: nonNegative().optional(),
  conditions: conditions(),
  revocation: z
    .strictObject({
      requestedAt: dateTime().optional(),
      completedAt: dateTime().optional(),
      requestedBy: text(1024).optional(),
      reason: text(1024).optional(),
      credentialsRevoked: nonNegative().optional(),
      pending: nonNegative().optional(),
    })
    .optional(),
  decisions: z
    .strictObject({
      allowed: nonNegative().optional(),
      denied: nonNegative().optional(),
      lastDecisionTime: dateTime().optional(),
      lastDecision: z.enum(POLICY_EFFECTS).optional(),
      lastDenialReason: text(1024).optional(),
    })
    .optional(),
  lastAttestation: z
    .strictObject({ pod: text(253).optional(), podUID: text(64).optional(), time: dateTime().optional() })
    .optional(),
  lastSeen: dateTime().optional(),
  usage: z
    .strictObject({
      since: dateTime().optional(),
      tools: listMap(
        z.strictObject({ name: text(256), calls: nonNegative(), denied: nonNegative().optional() }),
        'name',
        10,
      ).optional(),
      otherTools: z
        .strictObject({ calls: nonNegative().optional(), denied: nonNegative().optional() })
        .optional(),
    })
    .optional(),
  circuitBreaker: z
    .strictObject({
      trips: nonNegative().optional(),
      lastTrip: z
        .strictObject({
          time: dateTime(),
          threshold: z.enum(['maxDenialsPerMinute', 'maxCallsPerMinute', 'maxDistinctToolsPerMinute']),
          limit: nonNegative(),
          observed: nonNegative(),
          action: z.enum(CIRCUIT_BREAKER_ACTIONS),
        })
        .optional(),
    })
    .optional(),
  audit: z
    .strictObject({
      prunedThrough: z
        .string()
        .max(96)
        .regex(/^[0-9]+:[0-9a-f]{64}$/, 'must be <sequence>:<sha256 hex digest>')
        .optional(),
      pruned: z
        .strictObject({
          time: dateTime().optional(),
          reason: z.enum(['MaxAge', 'MaxRecordsPerAgent', 'MaxRecordsPerNamespace']).optional(),
          limit: text(128).optional(),
        })
        .optional(),
      dropped: nonNegative().optional(),
    })
    .optional(),
});

export const accessPolicyStatusSchema = z.strictObject({
  observedGeneration: nonNegative().optional(),
  conditions: conditions(),
  matchedAgentCount: nonNegative().optional(),
  matchedAgents: z.array(text(253)).max(10000).optional(),
});

export const credentialProviderStatusSchema = z.strictObject({
  observedGeneration: nonNegative().optional(),
  conditions: conditions(),
  standingSecret: z.boolean().optional(),
  issuedCount: nonNegative().optional(),
});

/** Kinds with a status (AuditRecord has none: records never change). */
export const STATUS_SCHEMAS = {
  AgentIdentity: agentIdentityStatusSchema,
  AccessPolicy: accessPolicyStatusSchema,
  CredentialProvider: credentialProviderStatusSchema,
} as const;
export type KindWithStatus = keyof typeof STATUS_SCHEMAS;
export type ValidStatus<K extends KindWithStatus> = z.output<(typeof STATUS_SCHEMAS)[K]>;

// --- per kind ---------------------------------------------------------------------

export const SPEC_SCHEMAS = {
  AgentIdentity: agentIdentitySpecSchema,
  AccessPolicy: accessPolicySpecSchema,
  CredentialProvider: credentialProviderSpecSchema,
  AuditRecord: auditRecordSpecSchema,
} as const;

export type WardenKind = keyof typeof SPEC_SCHEMAS;
export const WARDEN_KINDS = Object.keys(SPEC_SCHEMAS) as WardenKind[];

/** A spec after validation: every default filled in. */
export type ValidSpec<K extends WardenKind> = z.output<(typeof SPEC_SCHEMAS)[K]>;
export type AgentIdentitySpecValid = ValidSpec<'AgentIdentity'>;
export type AccessPolicySpecValid = ValidSpec<'AccessPolicy'>;
export type CredentialProviderSpecValid = ValidSpec<'CredentialProvider'>;
export type AuditRecordSpecValid = ValidSpec<'AuditRecord'>;
