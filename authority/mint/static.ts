/**
 * Standing secrets: an API key or a username/password read from a Secret and forwarded as a
 * header. Warden cannot make these short-lived, so the credential's `expiresAt` only bounds how
 * long the broker may cache it (the policy/agent TTL): after a kill or a Secret rotation the
 * broker has to come back to the authority, which re-checks policy. Status marks such providers
 * as standing secrets.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_INJECT_FORMAT, injectHeader } from './inject.js';
import { effectiveTtlMs } from './ttl.js';
import { MintError, type Minter, type MintRequest, type MintResult, providerRef } from './types.js';

/** A non-secret id: the Secret reference plus a short digest, so rotations show up in audit. */
function secretId(kind: string, namespace: string, name: string, value: string): string {
  const digest = createHash('sha256').update(value).digest('hex').slice(0, 12);
  return `${kind}:${namespace}/${name}:${digest}`;
}

function cacheUntil(req: MintRequest, now: Date): Date {
  return new Date(
    now.getTime() + effectiveTtlMs({ policy: req.policy.ttl, agentMax: req.agent.maxCredentialTTL }),
  );
}

export class ApiKeyMinter implements Minter {
  readonly type = 'APIKey' as const;
  constructor(private readonly now: () => Date = () => new Date()) {}

  async mint(req: MintRequest): Promise<MintResult> {
    const where = providerRef(req.provider);
    const ref = req.provider.spec.apiKey?.secretRef;
    if (!ref)
      throw new MintError('InvalidProvider', `${where}: spec.apiKey.secretRef is required for type APIKey`);
    const key = await req.secrets.read(req.provider.namespace, ref.name, ref.key);
    const now = this.now();
    return {
      credential: {
        kind: 'headers',
        headers: injectHeader(req.provider.spec.inject, key, where, `Secret ${ref.name} key ${ref.key}`),
        expiresAt: cacheUntil(req, now),
        id: secretId('apikey', req.provider.namespace, ref.name, key),
        standing: true,
      },
    };
  }
}

export const BASIC_INJECT_FORMAT = 'Basic {token}';

/** `Basic base64(user:pass)` by default; a colon in the username is rejected (RFC 7617 §2). */
export class BasicAuthMinter implements Minter {
  readonly type = 'BasicAuth' as const;
  constructor(private readonly now: () => Date = () => new Date()) {}

  async mint(req: MintRequest): Promise<MintResult> {
    const where = providerRef(req.provider);
    const ref = req.provider.spec.basicAuth?.secretRef;
    if (!ref)
      throw new MintError(
        'InvalidProvider',
        `${where}: spec.basicAuth.secretRef is required for type BasicAuth`,
      );
    const usernameKey = ref.usernameKey ?? 'username';
    const passwordKey = ref.passwordKey ?? 'password';
    const username = await req.secrets.read(req.provider.namespace, ref.name, usernameKey);
    const password = await req.secrets.read(req.provider.namespace, ref.name, passwordKey);
    if (username.includes(':')) {
      throw new MintError(
        'InvalidProvider',
        `${where}: Secret ${ref.name} key ${usernameKey}: a Basic auth username cannot contain ':' (RFC 7617)`,
      );
    }
    const token = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
    // The CRD defaults spec.inject.format to "Bearer {token}" whatever the type; "Bearer <base64
    // user:pass>" is never what a Basic-auth upstream wants, so that default means "Basic {token}".
    const format = req.provider.spec.inject?.format;
    const inject = {
      header: req.provider.spec.inject?.header,
      format: format === undefined || format === DEFAULT_INJECT_FORMAT ? BASIC_INJECT_FORMAT : format,
    };
    const now = this.now();
    return {
      credential: {
        kind: 'headers',
        headers: injectHeader(inject, token, where, `Secret ${ref.name}`),
        expiresAt: cacheUntil(req, now),
        id: secretId('basic', req.provider.namespace, ref.name, token),
        standing: true,
      },
    };
  }
}
