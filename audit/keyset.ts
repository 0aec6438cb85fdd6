/**
 * The audit keys' publication (I/O edge of core/audit/signature.ts; docs/adr/0012-audit-signing.md).
 *
 * The private keys live in their own Secret (warden-audit-signing-keys), rotated by the same
 * key-ring code as the authority's token keys but on an audit schedule (AUDIT_KEY_ROTATION).
 * Their public halves are published in the ConfigMap warden-audit-keys of Warden's namespace,
 * which every authenticated user may read (chart RBAC), so `kubectl warden audit --verify` needs
 * read access only. Publication is append-only: a key stays published after it stopped signing
 * (the records it signed must keep verifying), and a key signs only once it is published.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  AuditKeySet,
  type AuditKeys,
  type AuditPublicJwk,
  type AuditSigningKey,
  parseAuditJwks,
  publicJwkOf,
} from '../core/audit/signature.js';
import {
  AUDIT_KEYS_CONFIGMAP,
  AUDIT_KEYS_CONFIGMAP_KEY,
  AUDIT_SIGNING_KEYS_SECRET,
} from '../core/constants.js';
import { ApiError, type KubeApi } from '../kube/kube.js';

export { AUDIT_SIGNING_KEYS_SECRET };

/**
 * Rotation of the audit signing keys: a new key every 30 days, published an hour before it signs
 * (every replica re-reads the key Secret each minute, so all know it before the first record it
 * signs), and the private key dropped as soon as its successor signs (maxTokenLifetime 0: nothing
 * signed by it stays "in flight"). The public key stays in the ConfigMap for good.
 */
export const AUDIT_KEY_ROTATION = {
  rotationPeriodMs: 30 * 86_400_000,
  prepublishMs: 3_600_000,
  maxTokenLifetimeMs: 0,
};

/** Where the private keys come from (authority/keystore.ts SecretKeyStore fits). */
export interface AuditKeySource {
  signingKey(): AuditSigningKey;
  /** Published (pending, signing, not yet dropped) public keys. */
  jwks(): { keys: readonly AuditPublicJwk[] };
}

/** The ConfigMap's document: a JWKS plus when signing began. */
export interface PublishedKeys {
  keys: AuditPublicJwk[];
  signingSince: string;
}

/** Parses the ConfigMap's jwks.json (or a saved copy); the error says where and what. */
export function parsePublishedKeys(
  json: string,
  where: string,
): { keys: AuditPublicJwk[]; signingSince?: number } {
  const keys = parseAuditJwks(json, where);
  const since = (JSON.parse(json) as { signingSince?: unknown }).signingSince;
  if (since === undefined) return { keys };
  const ms = typeof since === 'string' ? Date.parse(since) : Number.NaN;
  if (!Number.isFinite(ms)) throw new Error(`${where}: signingSince must be an RFC 3339 time`);
  return { keys, signingSince: ms };
}

/** Pure: the published document after adding `current` keys (never removes one). */
export function mergePublished(
  existing: PublishedKeys | undefined,
  current: readonly AuditPublicJwk[],
  now: Date,
): { doc: PublishedKeys; changed: boolean } {
  const doc: PublishedKeys = existing
    ? { keys: [...existing.keys], signingSince: existing.signingSince }
    : { keys: [], signingSince: now.toISOString() };
  let changed = !existing;
  for (const k of current) {
    if (doc.keys.some((p) => p.kid === k.kid)) continue;
    doc.keys.push({ ...k });
    changed = true;
  }
  return { doc, changed };
}

interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

export interface PublishedAuditKeysOptions {
  api: KubeApi;
  /** Warden's namespace. */
  namespace: string;
  source: AuditKeySource;
  log?: Logger;
  now?: () => Date;
}

/** The writer's AuditKeys: signs with the source's key once published; verifies with all published keys. */
export class PublishedAuditKeys implements AuditKeys {
  private set = new AuditKeySet([]);
  private since: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => Date;

  constructor(private readonly opts: PublishedAuditKeysOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  signingKey(): AuditSigningKey {
    const key = this.opts.source.signingKey();
    if (!this.set.has(key.kid)) {
      throw new Error(
        `audit signing key ${key.kid} is not published in ConfigMap ${this.opts.namespace}/${AUDIT_KEYS_CONFIGMAP} yet; records wait until it is`,
      );
    }
    return key;
  }

  keySet(): AuditKeySet {
    return this.set;
  }

  signingSince(): number | undefined {
    return this.since;
  }

  /** Reads the ConfigMap (creating it on first start) and adds the source's keys. */
  async sync(): Promise<void> {
    const path = `/api/v1/namespaces/${this.opts.namespace}/configmaps`;
    const where = `ConfigMap ${this.opts.namespace}/${AUDIT_KEYS_CONFIGMAP}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      let cm: ConfigMap | undefined;
      try {
        cm = await this.opts.api.request<ConfigMap>('GET', `${path}/${AUDIT_KEYS_CONFIGMAP}`);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
      const raw = cm?.data?.[AUDIT_KEYS_CONFIGMAP_KEY];
      let existing: PublishedKeys | undefined;
      if (raw) {
        const parsed = parsePublishedKeys(raw, `${where} data["${AUDIT_KEYS_CONFIGMAP_KEY}"]`);
        existing = {
          keys: parsed.keys,
          signingSince: new Date(parsed.signingSince ?? this.now().getTime()).toISOString(),
        };
      }
      const { doc, changed } = mergePublished(existing, this.opts.source.jwks().keys, this.now());
      if (!changed) {
        this.adopt(doc);
        return;
      }
      const data = { [AUDIT_KEYS_CONFIGMAP_KEY]: `${JSON.stringify(doc, null, 2)}\n` };
      try {
        if (cm) {
          await this.opts.api.request('PUT', `${path}/${AUDIT_KEYS_CONFIGMAP}`, {
            body: { ...cm, data: { ...cm.data, ...data } },
          });
        } else {
          await this.opts.api.request('POST', path, {
            body: {
              apiVersion: 'v1',
              kind: 'ConfigMap',
              metadata: { name: AUDIT_KEYS_CONFIGMAP, labels: { 'app.kubernetes.io/part-of': 'warden' } },
              data,
            },
          });
        }
        this.adopt(doc);
        this.opts.log?.info({ kids: doc.keys.map((k) => k.kid) }, 'audit keys published');
        return;
      } catch (err) {
        // Another replica published first (409 on create or on the resourceVersion): re-read.
        if (!(err instanceof ApiError && err.code === 409)) throw err;
      }
    }
    throw new Error(`could not update ${where} after 5 conflicts`);
  }

  /** Syncs now and then every `intervalMs`; errors are logged, the previous keys stay in use. */
  async start(intervalMs = 60_000): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => {
      this.sync().catch((err: unknown) =>
        this.opts.log?.error({ err: String(err) }, 'audit key publication failed'),
      );
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private adopt(doc: PublishedKeys): void {
    if (doc.keys.map((k) => k.kid).join() !== this.set.keys.map((k) => k.kid).join()) {
      this.set = new AuditKeySet(doc.keys);
    }
    this.since = Date.parse(doc.signingSince);
  }
}

/** A fixed in-memory audit key (tests, benchmarks): publishes and signs with one key. */
export class StaticAuditKeys implements AuditKeys {
  private readonly set: AuditKeySet;
  constructor(
    private readonly key: AuditSigningKey,
    private readonly since?: number,
  ) {
    this.set = new AuditKeySet([publicJwkOf(key)]);
  }
  /** A fresh P-256 key with a random kid. */
  static generate(since?: number): StaticAuditKeys {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return new StaticAuditKeys({ kid: randomBytes(9).toString('base64url'), privateKey }, since);
  }
  signingKey(): AuditSigningKey {
    return this.key;
  }
  keySet(): AuditKeySet {
    return this.set;
  }
  signingSince(): number | undefined {
    return this.since;
  }
}
