/**
 * Verifies that a running image is signed by a key an AgentIdentity trusts
 * (spec.attestation.images.signatures, docs/adr/0016-image-signatures.md): fetches cosign's
 * signature manifest (`<repo>:sha256-<hex>.sig`) and its layers from the image's OCI registry
 * (distribution API v2) — anonymously, with the anonymous bearer-token dance registries such as
 * Docker Hub and ghcr.io ask for — and judges each layer with core/identity/cosign.ts.
 *
 * Fails closed: a registry that cannot be reached or answers unexpectedly gives
 * ImageSignatureUnverifiable, never a pass. Verdicts are cached per (repository, digest, key set),
 * bounded in count and time; "cannot tell" verdicts are not cached, so a registry that comes back
 * is asked again at the next attestation.
 */
import { createHash } from 'node:crypto';
import { IMAGE_DIGEST } from '../core/api/patterns.js';
import { COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLE_SIGNING_MEDIA_TYPE } from '../core/constants.js';
import {
  type ImageRepository,
  imageRepository,
  judgeSignatureLayer,
  keySetId,
  type LayerJudgement,
  parseSigningKeys,
  type SignatureVerdict,
  type SigningKeySpec,
  signatureTag,
} from '../core/identity/cosign.js';

/** One running image to check. */
export interface ImageSignatureQuery {
  /** The reference the repository is taken from (the container's spec image, else its imageID). */
  reference: string;
  /** The running digest (pod status), `sha256:<hex>`. */
  digest: string;
  /** spec.attestation.images.signatures.keys. */
  keys: readonly SigningKeySpec[];
}

export interface ImageSignatureVerifier {
  verify(q: ImageSignatureQuery): Promise<SignatureVerdict>;
}

export interface RegistrySignatureVerifierOptions {
  /** Per registry request (default 5 s). */
  timeoutMs?: number;
  /** Per verification, all its requests together (default 10 s): bounds how long /v1/token waits. */
  totalTimeoutMs?: number;
  /** Most cached verdicts (default 1024); the oldest goes first. */
  maxEntries?: number;
  /** How long a pass is cached (default 10 min): a deleted signature stops passing after it. */
  passTtlMs?: number;
  /** How long a refusal (not signed, invalid) is cached (default 30 s): a new signature is seen after it. */
  refusalTtlMs?: number;
  now?: () => number;
}

const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');
/** Largest signature manifest read (cosign's hold one layer per signature, a few hundred bytes each). */
const MAX_MANIFEST_BYTES = 256 * 1024;
/** Largest simple-signing payload read (cosign's are a few hundred bytes; annotations can grow them). */
const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Most signature layers judged per image. */
const MAX_LAYERS = 16;

/** Registries reached over plain HTTP: only the host's own loopback (a test or node-local registry). */
function isLoopback(registry: string): boolean {
  const host = registry.startsWith('[')
    ? registry.slice(0, registry.indexOf(']') + 1)
    : registry.split(':')[0];
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host ?? '');
}

/** The base URL of a registry's API: Docker Hub's API host differs from its reference name. */
export function registryBaseUrl(repo: ImageRepository): string {
  const host = repo.registry === 'docker.io' ? 'registry-1.docker.io' : repo.registry;
  return `${isLoopback(host) ? 'http' : 'https'}://${host}`;
}

/** Largest anonymous token answer read. */
const MAX_TOKEN_BYTES = 64 * 1024;

/** One verification's registry conversation: the anonymous bearer token, once obtained. */
interface RegistrySession {
  readonly repo: ImageRepository;
  /** Aborts every request of this check once its whole budget is spent. */
  readonly deadline: AbortSignal;
  token?: string;
}

/** A `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge. */
export interface BearerChallenge {
  realm: string;
  service?: string;
  scope?: string;
}

/** The Bearer challenge in a WWW-Authenticate header, if it holds one with a realm. */
export function parseBearerChallenge(header: string): BearerChallenge | undefined {
  const m = /^\s*Bearer\s+(.*)$/i.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of (m[1] ?? '').matchAll(/([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g)) {
    params[(p[1] ?? '').toLowerCase()] = p[2] ?? p[3] ?? '';
  }
  if (!params.realm) return undefined;
  return {
    realm: params.realm,
    ...(params.service !== undefined ? { service: params.service } : {}),
    ...(params.scope !== undefined ? { scope: params.scope } : {}),
  };
}

/** A registry answer Warden cannot judge by: becomes ImageSignatureUnverifiable. */
class RegistryProblem extends Error {}

interface ManifestLayer {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  annotations?: Record<string, unknown>;
}

export class RegistrySignatureVerifier implements ImageSignatureVerifier {
  private readonly cache = new Map<string, { verdict: SignatureVerdict; until: number }>();
  private readonly inFlight = new Map<string, Promise<SignatureVerdict>>();
  /** Registry round trips made (misses); cached answers make none. */
  fetches = 0;

  constructor(private readonly opts: RegistrySignatureVerifierOptions = {}) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  async verify(q: ImageSignatureQuery): Promise<SignatureVerdict> {
    const repo = imageRepository(q.reference);
    if (!repo) {
      return {
        ok: false,
        reason: 'ImageSignatureUnverifiable',
        message: `image reference ${q.reference.slice(0, 200)} names no registry repository to fetch signatures from`,
      };
    }
    const key = `${repo.name}@${q.digest}#${keySetId(q.keys)}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > this.now()) return hit.verdict;
    if (hit) this.cache.delete(key);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const p = this.check(repo, q).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    const verdict = await p;
    const ttl = verdict.ok
      ? (this.opts.passTtlMs ?? 600_000)
      : verdict.reason === 'ImageSignatureUnverifiable'
        ? 0
        : (this.opts.refusalTtlMs ?? 30_000);
    if (ttl > 0) {
      this.cache.set(key, { verdict, until: this.now() + ttl });
      if (this.cache.size > (this.opts.maxEntries ?? 1024)) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
    }
    return verdict;
  }

  private async check(repo: ImageRepository, q: ImageSignatureQuery): Promise<SignatureVerdict> {
    const parsed = parseSigningKeys(q.keys);
    if (!parsed.ok) {
      return { ok: false, reason: 'ImageSignatureUnverifiable', message: parsed.problems.join('; ') };
    }
    const image = `${repo.name}@${q.digest}`;
    const base = `${registryBaseUrl(repo)}/v2/${repo.path}`;
    const tag = signatureTag(q.digest);
    const session: RegistrySession = {
      repo,
      deadline: AbortSignal.timeout(this.opts.totalTimeoutMs ?? 10_000),
    };
    try {
      this.fetches++;
      const res = await this.get(session, `${base}/manifests/${tag}`, MANIFEST_MEDIA_TYPES);
      if (res.status === 404) {
        await res.body?.cancel();
        return {
          ok: false,
          reason: 'ImageNotSigned',
          message: `image ${image} has no cosign signature (no ${repo.name}:${tag} in its registry); sign it with cosign sign --key`,
        };
      }
      const manifest = record(
        JSON.parse((await this.body(res, MAX_MANIFEST_BYTES, `${repo.name}:${tag}`)).toString('utf8')),
      );
      const layers = (Array.isArray(manifest?.layers) ? manifest.layers : []) as ManifestLayer[];
      const signed = layers
        .filter((l) => typeof l?.annotations?.[COSIGN_SIGNATURE_ANNOTATION] === 'string')
        .slice(0, MAX_LAYERS);
      if (signed.length === 0) {
        return {
          ok: false,
          reason: 'ImageNotSigned',
          message: `image ${image}: ${repo.name}:${tag} holds no layer with a ${COSIGN_SIGNATURE_ANNOTATION} annotation`,
        };
      }
      const judged: LayerJudgement[] = [];
      for (const layer of signed) {
        const j = await this.judgeLayer(session, base, q.digest, layer, parsed.keys);
        if (j.ok) return { ok: true, key: j.key };
        judged.push(j);
      }
      // The most telling refusal: a trusted key's signature for another image, else an unknown key.
      const worst =
        judged.find((j) => !j.ok && j.why === 'claims') ??
        judged.find((j) => !j.ok && j.why === 'key') ??
        judged[0];
      return {
        ok: false,
        reason: 'ImageSignatureInvalid',
        message: `image ${image} has ${judged.length} cosign signature${judged.length === 1 ? '' : 's'}, none valid: ${worst && !worst.ok ? worst.message : 'unreadable'}`,
      };
    } catch (err) {
      return {
        ok: false,
        reason: 'ImageSignatureUnverifiable',
        message: `cannot fetch the signature of image ${image} from registry ${repo.registry} (${describe(err)}); attestation fails closed until the registry answers`,
      };
    }
  }

  private async judgeLayer(
    session: RegistrySession,
    base: string,
    digest: string,
    layer: ManifestLayer,
    keys: Parameters<typeof judgeSignatureLayer>[2],
  ): Promise<LayerJudgement> {
    const blob = layer.digest;
    if (typeof blob !== 'string' || !IMAGE_DIGEST.re.test(blob)) {
      return { ok: false, why: 'malformed', message: 'a signature layer has no sha256 digest' };
    }
    if (layer.mediaType !== undefined && layer.mediaType !== COSIGN_SIMPLE_SIGNING_MEDIA_TYPE) {
      return {
        ok: false,
        why: 'malformed',
        message: `a signature layer has media type ${String(layer.mediaType).slice(0, 100)}, not ${COSIGN_SIMPLE_SIGNING_MEDIA_TYPE}`,
      };
    }
    const repo = session.repo;
    const res = await this.get(session, `${base}/blobs/${blob}`, '*/*');
    if (res.status === 404) {
      await res.body?.cancel();
      return {
        ok: false,
        why: 'malformed',
        message: `signature payload ${blob} is missing from ${repo.name}`,
      };
    }
    const payload = await this.body(res, MAX_PAYLOAD_BYTES, `${repo.name}@${blob}`);
    // The registry is not trusted for content: the payload must be the blob the manifest names.
    if (`sha256:${createHash('sha256').update(payload).digest('hex')}` !== blob) {
      return { ok: false, why: 'malformed', message: `signature payload ${blob} does not match its digest` };
    }
    return judgeSignatureLayer(
      { payload, signature: String(layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION]) },
      { repository: repo, digest },
      keys,
    );
  }

  /**
   * A GET to the registry, anonymous. A registry that answers 401 with a Bearer challenge (Docker
   * Hub, ghcr.io, most cloud registries, even for public images) gets the token dance of the
   * distribution token spec without credentials: GET realm?service=…&scope=repository:<repo>:pull,
   * then the request again with that token (kept for the rest of this check).
   */
  private async get(session: RegistrySession, url: string, accept: string): Promise<Response> {
    const send = () =>
      fetch(url, {
        headers: { accept, ...(session.token ? { authorization: `Bearer ${session.token}` } : {}) },
        redirect: 'follow',
        signal: this.signal(session),
      });
    const res = await send();
    if (res.status !== 401 || session.token !== undefined) return res;
    const challenge = parseBearerChallenge(res.headers.get('www-authenticate') ?? '');
    if (!challenge) return res;
    await res.body?.cancel();
    session.token = await this.anonymousToken(session, challenge);
    return send();
  }

  private signal(session: RegistrySession): AbortSignal {
    return AbortSignal.any([session.deadline, AbortSignal.timeout(this.opts.timeoutMs ?? 5000)]);
  }

  private async anonymousToken(session: RegistrySession, c: BearerChallenge): Promise<string> {
    const repo = session.repo;
    let realm: URL;
    try {
      realm = new URL(c.realm);
    } catch {
      throw new RegistryProblem(`the registry's token realm ${c.realm.slice(0, 200)} is not a URL`);
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && isLoopback(realm.host))) {
      throw new RegistryProblem(`the registry's token realm ${realm.origin} is not https`);
    }
    if (c.service !== undefined) realm.searchParams.set('service', c.service);
    realm.searchParams.set('scope', `repository:${repo.path}:pull`);
    const res = await fetch(realm, {
      headers: { accept: 'application/json' },
      redirect: 'follow',
      signal: this.signal(session),
    });
    const body = record(
      JSON.parse((await this.body(res, MAX_TOKEN_BYTES, `the token from ${realm.origin}`)).toString('utf8')),
    );
    const token = body?.token ?? body?.access_token;
    if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_BYTES) {
      throw new RegistryProblem(`the token answer of ${realm.origin} holds no token`);
    }
    return token;
  }

  /** The body of a 200 answer, at most `max` bytes; anything else is a RegistryProblem. */
  private async body(res: Response, max: number, what: string): Promise<Buffer> {
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new RegistryProblem(
        res.status === 401 || res.status === 403
          ? `HTTP ${res.status} for ${what}: the registry requires credentials beyond an anonymous token, which Warden does not send yet`
          : `HTTP ${res.status} for ${what}`,
      );
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > max) {
      await res.body?.cancel();
      throw new RegistryProblem(`${what} is ${declared} bytes, more than ${max}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      size += chunk.length;
      // Throwing out of the loop cancels the stream (the iterator's return()).
      if (size > max) throw new RegistryProblem(`${what} is more than ${max} bytes`);
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks);
  }
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function describe(err: unknown): string {
  if (err instanceof RegistryProblem) return err.message;
  if (err instanceof SyntaxError) return 'its signature manifest is not JSON';
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'no answer within the timeout';
  return (e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err)).slice(0, 200);
}
