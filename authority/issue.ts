/**
 * Credential issuance after an Allow at POST /v1/credentials: find the CredentialProvider,
 * take the deciding rule's credential block (ttl, scopes, CEL claims), mint with the
 * provider type's minter (authority/mint/), remember what can be revoked (kill switch),
 * and answer the broker with what it injects upstream.
 *
 * Fails closed: a missing provider or a minting failure is a denial the broker reports
 * to the agent — never an allowed call without its credential. Messages name the
 * provider and the Secret, never a secret value.
 */
import type { CredentialProvider } from '../core/api/index.js';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import type { UserContext } from '../core/identity/user.js';
import type { Decision, PolicySet } from '../core/policy/index.js';
import type { ContextInput, RequestInput } from '../core/policy/types.js';
import { isNotFound } from '../kube/errors.js';
import { type KubeApi, resourcePath } from '../kube/kube.js';
import type { MinterRegistry } from './mint/index.js';
import {
  type MintAgent,
  MintError,
  type PolicyCredentialSettings,
  type SecretsReader,
} from './mint/types.js';
import { failureMessage, type IssuedCredentials } from './revocation.js';

/** What the broker receives: headers to inject, or a PostgreSQL login for its local endpoint. */
export interface IssuedAnswer {
  id: string;
  headers: Record<string, string>;
  expiresAt: string;
  postgresql?: { host: string; port: number; database: string; user: string; password: string };
  /** The token is bound to this DPoP key thumbprint: the broker must send a DPoP proof with it. */
  dpop?: { jkt: string };
  /** AWS temporary credentials the broker signs upstream requests with (SigV4); never shown to the agent. */
  aws?: {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken: string;
    region: string;
    service: string;
  };
}

export interface ProviderGetter {
  getProvider(namespace: string, name: string): Promise<CredentialProvider | undefined>;
}

const PROVIDERS = { group: GROUP, version: VERSION, plural: PLURAL.CredentialProvider };

/** Reads CredentialProviders with a GET (they change rarely; the answer is per request). */
export function apiProviderGetter(api: KubeApi): ProviderGetter {
  return {
    async getProvider(namespace, name) {
      try {
        return await api.request<CredentialProvider>('GET', resourcePath(PROVIDERS, namespace, name), {
          timeoutMs: 5_000,
        });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
  };
}

export interface IssuanceDeps {
  minters: MinterRegistry;
  providers: ProviderGetter;
  secrets: SecretsReader;
  /** Where revocable credentials are remembered for the kill switch. */
  issued?: IssuedCredentials;
}

export interface IssueInput {
  namespace: string;
  agent: MintAgent;
  user: UserContext | null;
  set: PolicySet;
  decision: Decision;
  target: string;
  request?: RequestInput;
  context?: ContextInput;
  /** The broker's DPoP key thumbprint (credential request `dpop_jkt`). */
  dpopJkt?: string;
}

/** A refusal to issue: the caller turns it into a denial with this reason and message. */
export class IssueRefused extends Error {
  constructor(
    readonly reason: 'ProviderNotFound' | 'CredentialUnavailable',
    message: string,
    /** The upstream could not be reached (MintError UpstreamUnreachable): "not now", not "no". */
    readonly retryable = false,
  ) {
    super(message);
  }
}

/** The deciding rule's compiled credential block, as the minters take it. */
export function ruleCredential(set: PolicySet, decision: Decision): PolicyCredentialSettings {
  const policy = set.policies.find((p) => p.id === decision.policy);
  const rule = policy?.rules.find((r) => r.index === decision.rule);
  const c = rule?.credential;
  return {
    policy: decision.policy ?? undefined,
    ...(c ? { ttl: c.ttl, scopes: c.scopes, claims: c.claims } : {}),
  };
}

export async function issueCredential(deps: IssuanceDeps, input: IssueInput): Promise<IssuedAnswer> {
  const where = `CredentialProvider ${input.namespace}/${input.target}`;
  const cp = await deps.providers.getProvider(input.namespace, input.target);
  if (!cp) throw new IssueRefused('ProviderNotFound', `${where} does not exist`);
  const minter = deps.minters[cp.spec.type];
  try {
    const result = await minter.mint({
      agent: input.agent,
      user: input.user,
      provider: { name: input.target, namespace: input.namespace, spec: cp.spec },
      policy: ruleCredential(input.set, input.decision),
      secrets: deps.secrets,
      ...(input.request ? { request: input.request } : {}),
      ...(input.context ? { context: input.context } : {}),
      ...(input.dpopJkt ? { dpopJkt: input.dpopJkt } : {}),
    });
    const c = result.credential;
    deps.issued?.remember(input.namespace, input.agent.name, {
      id: c.id,
      type: cp.spec.type,
      provider: `${input.namespace}/${input.target}`,
      expiresAt: c.expiresAt.getTime(),
      ...(result.revoke ? { revoke: result.revoke } : {}),
    });
    if (c.kind === 'postgresql') {
      return { id: c.id, headers: {}, expiresAt: c.expiresAt.toISOString(), postgresql: { ...c.value } };
    }
    if (c.kind === 'aws') {
      return { id: c.id, headers: {}, expiresAt: c.expiresAt.toISOString(), aws: { ...c.value } };
    }
    return {
      id: c.id,
      headers: { ...c.headers },
      expiresAt: c.expiresAt.toISOString(),
      ...(c.dpopJkt ? { dpop: { jkt: c.dpopJkt } } : {}),
    };
  } catch (err) {
    if (err instanceof MintError) {
      // Minters' messages usually start with the provider already: name it once.
      throw new IssueRefused(
        'CredentialUnavailable',
        `${where}: ${err.reason}: ${failureMessage(where, err)}`,
        err.reason === 'UpstreamUnreachable',
      );
    }
    // Unknown failures carry no detail to the broker: they could quote upstream responses.
    throw new IssueRefused('CredentialUnavailable', `${where}: the credential could not be minted`);
  }
}
