import { describe, expect, it } from 'vitest';
import { ScramClient } from './scram.js';

// RFC 7677 §3 test vector (user "user", password "pencil").
const CLIENT_NONCE = 'rOprNGfwEbeRWgbNEkqO';
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const CLIENT_FINAL =
  'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

describe('ScramClient', () => {
  it('reproduces the RFC 7677 exchange', () => {
    const c = new ScramClient('pencil', CLIENT_NONCE, 'user');
    expect(c.clientFirstMessage()).toBe(`n,,n=user,r=${CLIENT_NONCE}`);
    expect(c.clientFinalMessage(SERVER_FIRST)).toBe(CLIENT_FINAL);
    expect(() => c.verifyServerFinal(SERVER_FINAL)).not.toThrow();
  });

  it('rejects a server signature that does not match (upstream without the verifier)', () => {
    const c = new ScramClient('not-pencil', CLIENT_NONCE, 'user');
    c.clientFinalMessage(SERVER_FIRST);
    expect(() => c.verifyServerFinal(SERVER_FINAL)).toThrow(/server signature mismatch/);
  });

  it.each([
    {
      name: 'nonce not extending ours',
      first: 'r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      err: /does not extend/,
    },
    {
      name: 'nonce equal to ours',
      first: `r=${CLIENT_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`,
      err: /does not extend/,
    },
    { name: 'too few iterations', first: `r=${CLIENT_NONCE}x,s=AA==,i=1`, err: /iteration count 1 outside/ },
    { name: 'too many iterations (CPU bomb)', first: `r=${CLIENT_NONCE}x,s=AA==,i=99999999`, err: /outside/ },
    { name: 'missing salt', first: `r=${CLIENT_NONCE}x,i=4096`, err: /lacks r, s or i/ },
  ])('rejects a server-first-message with $name', ({ first, err }) => {
    expect(() => new ScramClient('pencil', CLIENT_NONCE).clientFinalMessage(first)).toThrow(err);
  });

  it('reports a server error and a final message before the exchange', () => {
    const c = new ScramClient('pencil', CLIENT_NONCE);
    expect(() => c.verifyServerFinal('v=AAAA')).toThrow(/without verifier/);
    c.clientFinalMessage(SERVER_FIRST);
    expect(() => c.verifyServerFinal('e=invalid-proof')).toThrow(/server reported error 'invalid-proof'/);
  });
});
