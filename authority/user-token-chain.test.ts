/**
 * A Warden token forwarded as the caller (delegation chains): verified with the authority's own
 * keys, read for its chain only after issuer, signature, audience, lifetime and typ hold.
 */
import { describe, expect, it } from 'vitest';
import { MAX_CHAIN_DEPTH } from '../core/constants.js';
import { agentSubject } from '../core/identity/agent.js';
import { OAuthError } from './errors.js';
import { signJwt } from './jwt.js';
import { StaticKeySource } from './keystore.js';
import { ACCESS_TOKEN_TYP } from './mint/jwt.js';
import { type UserContextSpec, UserTokenVerifier } from './user-token.js';

const ISSUER = 'https://warden.example';
const AUD = 'urn:warden:agent:ns:researcher';
const keys = StaticKeySource.generate();
const verifier = new UserTokenVerifier({
  warden: { issuer: ISSUER, keys },
  // The authority's own tokens are never fetched for: any network use fails the test.
  fetch: () => Promise.reject(new Error('no network expected')),
});
const spec: UserContextSpec = { trustedIssuers: [{ issuer: ISSUER, audiences: [AUD] }] };
const WHERE = 'AgentIdentity ns/researcher';
const now = Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  aud: AUD,
  sub: 'alice',
  iat: now,
  exp: now + 300,
  act: { sub: agentSubject('ns', 'planner') },
  ...extra,
});
const token = (c: Record<string, unknown>, typ = ACCESS_TOKEN_TYP, k = keys) =>
  signJwt(k.signingKey(), typ, c);

async function refusal(p: Promise<unknown>): Promise<OAuthError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OAuthError);
  return err as OAuthError;
}

describe('a Warden token as the caller', () => {
  it('gives the human and the agents before this one', async () => {
    const r = await verifier.verifyCaller(token(claims()), spec, WHERE);
    expect(r.user).toMatchObject({ present: true, sub: 'alice', issuer: ISSUER });
    expect(r.prior).toEqual([{ namespace: 'ns', name: 'planner' }]);
  });

  it('gives no human when the chain began with an agent acting alone', async () => {
    const r = await verifier.verifyCaller(
      token(claims({ sub: agentSubject('ns', 'planner'), act: undefined })),
      spec,
      WHERE,
    );
    expect(r.user.present).toBe(false);
    expect(r.prior).toEqual([{ namespace: 'ns', name: 'planner' }]);
  });

  it('refuses a session or agent token (typ) of the same issuer', async () => {
    const err = await refusal(verifier.verifyCaller(token(claims(), 'warden-session+jwt'), spec, WHERE));
    expect(err.code).toBe('invalid_grant');
    expect(err.description).toContain(`(typ ${ACCESS_TOKEN_TYP}), not a session or agent token`);
  });

  it('refuses a token signed by a key this authority does not publish', async () => {
    const err = await refusal(
      verifier.verifyCaller(token(claims(), ACCESS_TOKEN_TYP, StaticKeySource.generate()), spec, WHERE),
    );
    expect(err.description).toMatch(/signature is invalid|key \(kid\)/);
  });

  it('refuses a token minted for another agent (audience)', async () => {
    const err = await refusal(
      verifier.verifyCaller(token(claims({ aud: 'urn:warden:agent:ns:other' })), spec, WHERE),
    );
    expect(err.description).toContain('audience is not one of the audiences');
  });

  it('refuses an expired token', async () => {
    const err = await refusal(
      verifier.verifyCaller(token(claims({ iat: now - 900, exp: now - 600 })), spec, WHERE),
    );
    expect(err.description).toContain('expired');
  });

  it(`refuses a chain deeper than ${MAX_CHAIN_DEPTH} agents, saying so`, async () => {
    let act: Record<string, unknown> | undefined;
    for (let i = 0; i < MAX_CHAIN_DEPTH; i++)
      act = { sub: agentSubject('ns', `a${i}`), ...(act ? { act } : {}) };
    const err = await refusal(verifier.verifyCaller(token(claims({ act })), spec, WHERE));
    expect(err.code).toBe('invalid_grant');
    expect(err.description).toBe(
      `the delegation chain of the Warden token is refused: the delegation chain would be more than ${MAX_CHAIN_DEPTH} agents deep with this agent (Warden's limit); shorten the chain of agents calling agents`,
    );
  });

  it('refuses an actor that is not a Warden agent', async () => {
    const err = await refusal(verifier.verifyCaller(token(claims({ act: { sub: 'bob' } })), spec, WHERE));
    expect(err.description).toContain('act.sub at depth 1 is not a Warden agent');
  });

  it('is not trusted unless the AgentIdentity lists the Warden issuer', async () => {
    const other: UserContextSpec = { trustedIssuers: [{ issuer: 'https://idp.example', audiences: [AUD] }] };
    const err = await refusal(verifier.verifyCaller(token(claims()), other, WHERE));
    expect(err.description).toContain('issuer is not trusted');
  });
});
