/**
 * Condition types and reasons the reconcilers write, and the Event reasons they
 * record. Reasons are CamelCase constants (docs/conventions.md §5): tools and
 * people match on them, so they never change meaning.
 */

/** Condition types. */
export const CONDITION = {
  /** The object is valid and usable. */
  Ready: 'Ready',
  /** AgentIdentity only: the kill switch is on. */
  Suspended: 'Suspended',
} as const;

/** Condition and Event reasons. */
export const REASON = {
  /** Everything the object references exists and is valid. */
  Ready: 'Ready',
  /** AgentIdentity: spec.serviceAccountName names no ServiceAccount in the namespace. */
  ServiceAccountNotFound: 'ServiceAccountNotFound',
  /** AgentIdentity: spec.suspended is true (Ready=False and Suspended=True carry it). */
  Suspended: 'Suspended',
  /** AgentIdentity: spec.suspended is false. */
  Active: 'Active',
  /** AgentIdentity Event: the kill switch was turned off again. */
  Resumed: 'Resumed',
  /** CredentialProvider: a referenced Secret does not exist. */
  SecretNotFound: 'SecretNotFound',
  /** CredentialProvider: RBAC does not let the controller read the referenced Secret's namespace. */
  SecretAccessDenied: 'SecretAccessDenied',
  /** CredentialProvider: a referenced Secret lacks a referenced key. */
  SecretKeyMissing: 'SecretKeyMissing',
  /**
   * CredentialProvider: spec.type names a block that is not set (the CRD's CEL rules normally
   * prevent it). AgentIdentity: a spec.attestation.images.signatures key is not an ECDSA P-256 key.
   */
  InvalidSpec: 'InvalidSpec',
  /** AccessPolicy: a CEL expression (or glob, selector, duration) does not compile. */
  InvalidExpression: 'InvalidExpression',
  /** AccessPolicy Event: the policy's selector matches no AgentIdentity in its namespace. */
  NoMatchingAgents: 'NoMatchingAgents',
} as const;

/** Event actions (events.k8s.io/v1 `action`). */
export const ACTION = {
  Reconcile: 'Reconcile',
  Validate: 'Validate',
} as const;
