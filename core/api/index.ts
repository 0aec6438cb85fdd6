/**
 * Warden's API: the types generated from crds/ (the source of truth), the names
 * needed to address the resources, and runtime validation. Import from here, not
 * from ./generated/ directly.
 */
import { API_VERSION, GROUP, PLURAL, VERSION } from '../constants.js';

export { formatDuration, parseDuration } from './duration.js';
export type {
  AccessPolicy,
  AccessPolicyList,
  AccessPolicyRule,
  AccessPolicySpec,
  AccessPolicyStatus,
  AgentSelector,
  HttpMatch,
  RuleCredential,
  RuleLimit,
  WhenCondition,
} from './generated/access-policy.js';
export type {
  AgentAttestation,
  AgentIdentity,
  AgentIdentityList,
  AgentIdentitySpec,
  AgentIdentityStatus,
  CircuitBreaker,
  CircuitBreakerStatus,
  CircuitBreakerTrip,
  DecisionStats,
  LastAttestation,
  RevocationStatus,
  TrustedIssuer,
  UserContext,
} from './generated/agent-identity.js';
export type {
  AuditEntry,
  AuditReason,
  AuditRecord,
  AuditRecordList,
  AuditRecordSpec,
  AuditReplay,
  AuditReplayContext,
  AuditReplayUser,
} from './generated/audit-record.js';
export type { Condition } from './generated/common.js';
export type {
  ApiKeyProvider,
  BasicAuthProvider,
  CredentialProvider,
  CredentialProviderList,
  CredentialProviderSpec,
  CredentialProviderStatus,
  InjectSpec,
  JwtProvider,
  OAuth2ClientCredentialsProvider,
  OAuth2TokenExchangeProvider,
  PostgreSQLProvider,
  ProviderTarget,
  SecretKeyRef,
  UsernamePasswordSecretRef,
} from './generated/credential-provider.js';
export {
  type AccessPolicySpecValid,
  type AgentIdentitySpecValid,
  AUDIT_ENTRY_KINDS,
  type AuditRecordSpecValid,
  type CredentialProviderSpecValid,
  conditionSchema,
  HTTP_METHODS,
  type KindWithStatus,
  POLICY_EFFECTS,
  PROTOCOLS,
  PROVIDER_TYPES,
  type ProviderType,
  SPEC_SCHEMAS,
  STANDING_SECRET_TYPES,
  STATUS_SCHEMAS,
  TYPE_BLOCK,
  USER_CONTEXT_MODES,
  type ValidSpec,
  type ValidStatus,
  WARDEN_KINDS,
  type WardenKind,
} from './schemas.js';
export {
  describeIssues,
  type FieldIssue,
  formatPath,
  type ValidateOptions,
  type Validation,
  type ValidObject,
  validateAccessPolicySpec,
  validateAgentIdentitySpec,
  validateAuditRecordSpec,
  validateCredentialProviderSpec,
  validateObject,
  validateSpec,
  validateStatus,
} from './validate.js';

export { API_VERSION, GROUP, PLURAL, VERSION };

/** Everything needed to address one kind through the API (paths, client-node custom object calls). */
export interface ResourceInfo {
  group: typeof GROUP;
  version: typeof VERSION;
  apiVersion: typeof API_VERSION;
  kind: keyof typeof PLURAL;
  plural: (typeof PLURAL)[keyof typeof PLURAL];
}

function info<K extends keyof typeof PLURAL>(kind: K) {
  return { group: GROUP, version: VERSION, apiVersion: API_VERSION, kind, plural: PLURAL[kind] } as const;
}

/** Per-kind resource names, e.g. `RESOURCES.AccessPolicy.plural` → "accesspolicies". */
export const RESOURCES = {
  AgentIdentity: info('AgentIdentity'),
  AccessPolicy: info('AccessPolicy'),
  CredentialProvider: info('CredentialProvider'),
  AuditRecord: info('AuditRecord'),
} as const satisfies Record<keyof typeof PLURAL, ResourceInfo>;

/** The category of the objects people declare: `kubectl get warden` lists AgentIdentities, AccessPolicies and CredentialProviders. */
export const CATEGORY = 'warden';
/** AuditRecords' own category (`kubectl get warden-audit`): the trail grows every flush and would drown the rest. */
export const AUDIT_CATEGORY = 'warden-audit';
