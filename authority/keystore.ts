/**
 * Signing keys kept in a Kubernetes Secret (I/O edge of keys.ts): load or create on start,
 * re-read and rotate on a timer, publish the JWKS.
 */
import type { Logger } from 'pino';
import type { KubeApi } from '../kube/kube.js';
import { resourcePath } from '../kube/kube.js';
import { SECRETS } from '../kube/resources.js';
import { SIGNING_KEYS_SECRET, SIGNING_KEYS_SECRET_KEY } from './constants.js';
import {
  DEFAULT_ROTATION,
  generateStoredKey,
  type KeyGenerator,
  type KeyRing,
  type LoadedKey,
  loadKey,
  type PublicJwk,
  parseKeyRing,
  planRotation,
  publishedKeysOf,
  type RotationPolicy,
  signingKeyOf,
} from './keys.js';

/** HTTP status of an API error (kube/kube.ts ApiError, or client-node's ApiException), or undefined. */
export function apiStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The parts of a v1 Secret the key store reads and writes. */
interface SecretObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  type?: string;
  data?: Record<string, string>;
}

export interface KeyStoreOptions {
  /** The process's API client (a Manager's). */
  api: KubeApi;
  namespace: string;
  secretName?: string;
  policy?: RotationPolicy;
  now?: () => Date;
  generate?: KeyGenerator;
  log?: Logger;
}

/** The current keys, as every other authority module sees them. */
export interface KeySource {
  /** The key to sign with now. */
  signingKey(): LoadedKey;
  /** The public keys to publish/verify with now. */
  jwks(): { keys: PublicJwk[] };
}

export class SecretKeyStore implements KeySource {
  private readonly secretName: string;
  private readonly policy: RotationPolicy;
  private readonly now: () => Date;
  private readonly generate: KeyGenerator;
  private ring: KeyRing = { keys: [] };
  private loaded = new Map<string, LoadedKey>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: KeyStoreOptions) {
    this.secretName = opts.secretName ?? SIGNING_KEYS_SECRET;
    this.policy = opts.policy ?? DEFAULT_ROTATION;
    this.now = opts.now ?? (() => new Date());
    this.generate = opts.generate ?? generateStoredKey;
  }

  signingKey(): LoadedKey {
    const stored = signingKeyOf(this.ring, this.now());
    const key = stored && this.loaded.get(stored.kid);
    if (!key) throw new Error('no signing key loaded; call SecretKeyStore.sync() first');
    return key;
  }

  jwks(): { keys: PublicJwk[] } {
    return {
      keys: publishedKeysOf(this.ring, this.now(), this.policy).flatMap((k) => {
        const loaded = this.loaded.get(k.kid);
        return loaded ? [loaded.publicJwk] : [];
      }),
    };
  }

  /** Re-reads the Secret and rotates if due. Safe to call concurrently from several replicas. */
  async sync(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const secret = await this.readOrCreate();
      const ring = this.ringOf(secret);
      const plan = planRotation(ring, this.now(), this.policy, this.generate);
      if (!plan.changed) {
        this.adopt(ring);
        return;
      }
      try {
        // A replace carrying the resourceVersion read: another replica's rotation meanwhile is a 409.
        const updated = await this.opts.api.request<SecretObject>(
          'PUT',
          resourcePath(SECRETS, this.opts.namespace, this.secretName),
          { body: { ...secret, data: { ...secret.data, [SIGNING_KEYS_SECRET_KEY]: encode(plan.ring) } } },
        );
        this.adopt(this.ringOf(updated));
        this.opts.log?.info({ kids: plan.ring.keys.map((k) => k.kid) }, 'signing keys rotated');
        return;
      } catch (err) {
        if (apiStatus(err) !== 409) throw err;
        // Another replica rotated first: re-read and adopt its keys.
      }
    }
    throw new Error(`could not update Secret ${this.opts.namespace}/${this.secretName} after 5 conflicts`);
  }

  /** Syncs now and then every `intervalMs`; errors are logged, the previous keys stay in use. */
  async start(intervalMs = 60_000): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => {
      this.sync().catch((err: unknown) => this.opts.log?.error({ err }, 'signing key sync failed'));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private ringOf(secret: SecretObject): KeyRing {
    const raw = secret.data?.[SIGNING_KEYS_SECRET_KEY];
    if (!raw) return { keys: [] };
    return parseKeyRing(Buffer.from(raw, 'base64').toString('utf8'));
  }

  private adopt(ring: KeyRing): void {
    const loaded = new Map<string, LoadedKey>();
    for (const k of ring.keys) loaded.set(k.kid, this.loaded.get(k.kid) ?? loadKey(k));
    this.ring = ring;
    this.loaded = loaded;
  }

  private async readOrCreate(): Promise<SecretObject> {
    const path = resourcePath(SECRETS, this.opts.namespace, this.secretName);
    try {
      return await this.opts.api.request<SecretObject>('GET', path);
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
    // Create-if-absent: the first replica's keys win; the others get 409 and read them.
    const initial = planRotation({ keys: [] }, this.now(), this.policy, this.generate).ring;
    try {
      return await this.opts.api.request<SecretObject>('POST', resourcePath(SECRETS, this.opts.namespace), {
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: this.secretName, labels: { 'app.kubernetes.io/part-of': 'warden' } },
          type: 'Opaque',
          data: { [SIGNING_KEYS_SECRET_KEY]: encode(initial) },
        },
      });
    } catch (err) {
      if (apiStatus(err) !== 409) throw err;
      return await this.opts.api.request<SecretObject>('GET', path);
    }
  }
}

function encode(ring: KeyRing): string {
  return Buffer.from(JSON.stringify(ring)).toString('base64');
}

/** A fixed in-memory key source (tests, benchmarks, single-process dev). */
export class StaticKeySource implements KeySource {
  private readonly keys: LoadedKey[];
  constructor(
    ring: KeyRing,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.ring = ring;
    this.keys = ring.keys.map(loadKey);
  }
  private readonly ring: KeyRing;
  static generate(): StaticKeySource {
    const now = new Date();
    return new StaticKeySource({ keys: [generateStoredKey(now, now)] });
  }
  signingKey(): LoadedKey {
    const kid = signingKeyOf(this.ring, this.now())?.kid;
    const key = this.keys.find((k) => k.kid === kid);
    if (!key) throw new Error('no active key');
    return key;
  }
  jwks(): { keys: PublicJwk[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }
}
