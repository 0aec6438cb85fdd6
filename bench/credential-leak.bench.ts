/**
 * What keeping a credential from reaching the agent costs (docs/threat-model.md, "Credentials
 * reaching the agent"; docs/dpop.md):
 *  - dpop/proof/node-crypto vs dpop/proof/jose: one DPoP proof as the broker signs it for each
 *    upstream request (broker/dpop.ts, node:crypto one-shot ES256) and the same proof through
 *    jose's SignJWT (WebCrypto) — why the broker signs with node:crypto;
 *  - dpop/verify/target: one request verified by samples/dpop-target.ts (proof signature, token
 *    signature via a local JWKS, thumbprint, ath, replay cache) — the target's side;
 *  - scrub/forms/jwt: computing every scrubbed form of a newly issued JWT (once per credential);
 *  - scrub/http-body/120KB and scrub/mcp-message/1KB: scrubbing a response against all those forms
 *    (HTTP proxy stream, MCP gateway message).
 *   npx tsx bench/run.ts credential-leak
 */
import { generateKeyPairSync } from 'node:crypto';
import { createLocalJWKSet, exportJWK, importJWK, type JWK, SignJWT } from 'jose';
import { credentialSecrets } from '../broker/credentials.js';
import { accessTokenHash, DpopKey, proofTargetUri } from '../broker/dpop.js';
import { redactString } from '../broker/headers.js';
import { Scrubber } from '../broker/scrub.js';
import { signedJwt } from '../broker/testing.js';
import { createWardenTokenVerifier, ReplayCache } from '../samples/dpop-target.js';
import { type BenchResult, measure, measureAsync } from './lib.js';

const URL_MCP = new URL('http://127.0.0.1:8080/mcp');

async function dpopBenches(): Promise<BenchResult[]> {
  const key = new DpopKey();
  const token = signedJwt({ cnf: { jkt: key.thumbprint }, aud: 'jira-mcp', iss: 'https://warden.bench' });
  const ath = accessTokenHash(token);
  const viaNode = measure('dpop/proof/node-crypto', () => key.proof({ htm: 'POST', url: URL_MCP, ath }), {
    iterations: 5_000,
    repeats: 5,
    warmup: 1_000,
    note: 'DpopKey.proof: header cached, payload + one ES256 signature (what the broker adds per upstream request)',
  });
  // The same proof through jose, with the same key.
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = await exportJWK(pair.publicKey);
  const privateKey = await importJWK({ ...pair.privateKey.export({ format: 'jwk' }), alg: 'ES256' }, 'ES256');
  let n = 0;
  const viaJose = await measureAsync(
    'dpop/proof/jose',
    () =>
      new SignJWT({ jti: `j${++n}`, htm: 'POST', htu: proofTargetUri(URL_MCP), ath })
        .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
        .setIssuedAt()
        .sign(privateKey),
    {
      iterations: 5_000,
      repeats: 5,
      warmup: 1_000,
      baseline: 'dpop/proof/node-crypto',
      note: 'same proof via jose SignJWT (WebCrypto)',
    },
  );

  // The target: the token is signed by "Warden" (this key, served as a local JWKS).
  const warden = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const wardenKey = await importJWK(
    { ...warden.privateKey.export({ format: 'jwk' }), alg: 'ES256' },
    'ES256',
  );
  const jwks = createLocalJWKSet({
    keys: [{ ...(await exportJWK(warden.publicKey)), kid: 'k1', alg: 'ES256' } as JWK],
  });
  const bound = await new SignJWT({ sub: 'agent', cnf: { jkt: key.thumbprint } })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
    .setIssuer('https://warden.bench')
    .setAudience('jira-mcp')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(wardenKey);
  const boundAth = accessTokenHash(bound);
  const o = { iterations: 2_000, repeats: 3, warmup: 200 };
  const proofs = Array.from({ length: o.warmup + o.iterations * o.repeats }, () =>
    key.proof({ htm: 'POST', url: URL_MCP, ath: boundAth }),
  );
  const verify = createWardenTokenVerifier({
    issuer: 'https://warden.bench',
    jwks,
    audience: 'jira-mcp',
    requireDpop: true,
    replayCache: new ReplayCache(proofs.length + 1),
  });
  let i = 0;
  const verified = await measureAsync(
    'dpop/verify/target',
    () => verify({ method: 'POST', url: URL_MCP, authorization: `DPoP ${bound}`, dpop: [proofs[i++]!] }),
    {
      ...o,
      note: 'samples/dpop-target.ts per request: proof + token signatures, thumbprint, ath, replay cache',
    },
  );
  return [viaNode, viaJose, verified];
}

function scrubBenches(): BenchResult[] {
  const token = signedJwt();
  const headers = { Authorization: `Bearer ${token}` };
  const forms = measure('scrub/forms/jwt', () => credentialSecrets(headers), {
    iterations: 500,
    repeats: 3,
    warmup: 50,
    note: `every scrubbed form of a new JWT (${credentialSecrets(headers).length} strings), once per issued credential`,
  });
  const secrets = credentialSecrets(headers);
  const body = Buffer.from(
    JSON.stringify(Array.from({ length: 2000 }, (_, k) => ({ id: k, title: `Printer on fire ${k}` }))),
  );
  const scrubber = new Scrubber(secrets);
  const http = measure('scrub/http-body/120KB', () => scrubber.push(body), {
    iterations: 300,
    repeats: 3,
    warmup: 30,
    note: `one ${Math.round(body.length / 1024)} KB chunk of an HTTP response through the Scrubber`,
  });
  const message = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    result: { content: [{ type: 'text', text: 'x'.repeat(1000) }] },
  });
  const mcp = measure('scrub/mcp-message/1KB', () => redactString(message, secrets), {
    iterations: 10_000,
    repeats: 3,
    warmup: 1_000,
    note: 'one 1 KB MCP message (JSON or SSE event) through redactString',
  });
  return [forms, http, mcp];
}

export async function run(): Promise<BenchResult[]> {
  return [...(await dpopBenches()), ...scrubBenches()];
}
