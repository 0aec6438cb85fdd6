import { describe, expect, it } from 'vitest';
import type { CredentialProviderSpec } from '../../core/api/generated/credential-provider.js';
import {
  AWS_TAGS_CLAIM,
  assumeRolePlan,
  awsCredentialId,
  parseStsResponse,
  roleSessionName,
  webIdentityClaims,
  xmlText,
} from './aws.js';
import { agent, NOW, policy, provider, request } from './testing.js';
import { MintError } from './types.js';

const WHERE = 'CredentialProvider agents/s3';
const STS = 'https://sts.eu-west-1.amazonaws.com';

function awsProvider(aws: Partial<NonNullable<CredentialProviderSpec['aws']>> = {}) {
  return provider(
    {
      type: 'AWS',
      target: { url: 'https://s3.eu-west-1.amazonaws.com', protocol: 'HTTP' },
      aws: { roleArn: 'arn:aws:iam::123456789012:role/reports', region: 'eu-west-1', ...aws },
    },
    's3',
  );
}

const OK_BODY = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE000000001</AccessKeyId>
      <SecretAccessKey>secret/with+chars&amp;more</SecretAccessKey>
      <SessionToken>token-value</SessionToken>
      <Expiration>2026-11-29T13:00:00Z</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:warden:agent:agents:support-bot</SubjectFromWebIdentityToken>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>`;

describe('parseStsResponse', () => {
  it('reads the temporary credentials, entities decoded', () => {
    expect(parseStsResponse(200, OK_BODY, WHERE, STS)).toEqual({
      accessKeyId: 'ASIAEXAMPLE000000001',
      secretAccessKey: 'secret/with+chars&more',
      sessionToken: 'token-value',
      expiration: new Date('2026-11-29T13:00:00Z'),
    });
  });

  it.each([
    {
      name: 'an STS error names its code and message',
      status: 400,
      body: '<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Incorrect token audience</Message></Error></ErrorResponse>',
      err: /refused AssumeRoleWithWebIdentity with 400 \(InvalidIdentityToken: Incorrect token audience\); check the role's trust policy/,
    },
    {
      name: 'an error without a body',
      status: 503,
      body: '',
      err: /with 503 \(no STS error body\)/,
    },
    {
      name: 'a 200 without credentials',
      status: 200,
      body: '<AssumeRoleWithWebIdentityResponse/>',
      err: /answered 200 without Credentials/,
    },
    {
      name: 'a 200 with an unreadable expiration',
      status: 200,
      body: OK_BODY.replace('2026-11-29T13:00:00Z', 'soon'),
      err: /without Credentials/,
    },
  ])('$name', ({ status, body, err }) => {
    expect(() => parseStsResponse(status, body, WHERE, STS)).toThrow(err);
    try {
      parseStsResponse(status, body, WHERE, STS);
    } catch (e) {
      expect(e).toBeInstanceOf(MintError);
      expect((e as MintError).reason).toBe('UpstreamRejected');
    }
  });

  it('keeps control characters and length of upstream text out of the message', () => {
    const body = `<Error><Code>Bad\u0007Code</Code><Message>${'x'.repeat(5000)}</Message></Error>`;
    let message = '';
    try {
      parseStsResponse(400, body, WHERE, STS);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('Bad Code');
    expect(message.length).toBeLessThan(1000);
  });
});

describe('xmlText', () => {
  it.each([
    ['<A>x</A>', 'A', 'x'],
    ['<A attr="1">x&lt;y&#65;&#x42;</A>', 'A', 'x<yAB'],
    ['<B>x</B>', 'A', undefined],
  ])('%s', (xml, tag, out) => expect(xmlText(xml, tag)).toBe(out));
});

describe('assumeRolePlan', () => {
  it('defaults: the regional STS, audience sts.amazonaws.com, service s3, one hour', () => {
    const plan = assumeRolePlan(request({ provider: awsProvider() }), NOW);
    expect(plan).toEqual({
      roleArn: 'arn:aws:iam::123456789012:role/reports',
      region: 'eu-west-1',
      service: 's3',
      stsUrl: STS,
      audience: 'sts.amazonaws.com',
      durationSeconds: 3600,
      useForMs: 3_600_000,
      tags: {},
    });
  });

  it.each([
    {
      name: 'a 5m rule: STS is asked for its minimum, Warden uses 5m',
      ttl: '5m',
      duration: 900,
      useFor: 300_000,
    },
    { name: 'a 30m rule', ttl: '30m', duration: 1800, useFor: 1_800_000 },
    { name: 'no rule ttl: the provider’s session', ttl: undefined, duration: 3600, useFor: 3_600_000 },
  ])('$name', ({ ttl, duration, useFor }) => {
    const plan = assumeRolePlan(request({ provider: awsProvider(), policy: policy({ ttl }) }), NOW);
    expect(plan.durationSeconds).toBe(duration);
    expect(plan.useForMs).toBe(useFor);
  });

  it("the agent's maxCredentialTTL caps the session", () => {
    const plan = assumeRolePlan(
      request({
        provider: awsProvider({ sessionDuration: '12h' }),
        agent: agent({ maxCredentialTTL: '2h' }),
      }),
      NOW,
    );
    expect(plan.durationSeconds).toBe(7200);
  });

  it('a session policy as a JSON string, built with CEL', () => {
    const plan = assumeRolePlan(
      request({
        provider: awsProvider({
          sessionPolicy: `'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::reports/' + agent.name + '/*"}]}'`,
        }),
      }),
      NOW,
    );
    expect(JSON.parse(plan.sessionPolicy!)).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::reports/support-bot/*' },
      ],
    });
  });

  it('a session policy as a CEL map', () => {
    const plan = assumeRolePlan(
      request({ provider: awsProvider({ sessionPolicy: "{'Version': '2012-10-17', 'Statement': []}" }) }),
      NOW,
    );
    expect(JSON.parse(plan.sessionPolicy!)).toEqual({ Version: '2012-10-17', Statement: [] });
  });

  it('session tags from CEL over agent and user', () => {
    const plan = assumeRolePlan(
      request({
        provider: awsProvider({
          sessionTags: { agent: 'agent.name', user: "user.present ? user.sub : 'none'" },
        }),
      }),
      NOW,
    );
    expect(plan.tags).toEqual({ agent: 'support-bot', user: 'alice' });
  });

  it.each([
    {
      name: 'a policy that is not a document',
      aws: { sessionPolicy: "'not json'" },
      err: /spec\.aws\.sessionPolicy: evaluated to a string that is not JSON/,
    },
    {
      name: 'a policy that is a list',
      aws: { sessionPolicy: '[1, 2]' },
      err: /spec\.aws\.sessionPolicy: must evaluate to an IAM policy document/,
    },
    {
      name: 'a policy over 2048 characters',
      aws: { sessionPolicy: `'{"Version":"2012-10-17","Sid":"' + '${'x'.repeat(2100)}' + '"}'` },
      err: /STS accepts at most 2048/,
    },
    {
      name: 'a policy that does not compile',
      aws: { sessionPolicy: 'agent.nme +' },
      err: /spec\.aws\.sessionPolicy/,
    },
    {
      name: 'a tag that is not a string',
      aws: { sessionTags: { n: '1 + 1' } },
      err: /spec\.aws\.sessionTags\.n: must evaluate to a string/,
    },
    {
      name: 'a tag value with characters AWS refuses',
      aws: { sessionTags: { n: "'a;b'" } },
      err: /spec\.aws\.sessionTags\.n: must evaluate to a string/,
    },
    {
      name: 'a tag key starting with aws:',
      aws: { sessionTags: { 'aws:team': "'x'" } },
      err: /spec\.aws\.sessionTags\.aws:team: 'aws:team' is not a valid session tag key/,
    },
  ])('refuses $name, naming the field', ({ aws, err }) => {
    expect(() => assumeRolePlan(request({ provider: awsProvider(aws) }), NOW)).toThrow(err);
  });

  it('refuses a provider without spec.aws', () => {
    const p = provider({ type: 'AWS', target: { url: 'https://s3', protocol: 'HTTP' } }, 's3');
    expect(() => assumeRolePlan(request({ provider: p }), NOW)).toThrow(/spec\.aws is required for type AWS/);
  });
});

describe('webIdentityClaims', () => {
  it('sub is the agent (whoever the user is), aud the configured audience, a minute long', () => {
    const req = request({ provider: awsProvider({ audience: 'warden-minio' }) });
    const claims = webIdentityClaims(req, assumeRolePlan(req, NOW), 'https://warden.example.com', NOW, 'j1');
    const iat = NOW.getTime() / 1000;
    expect(claims).toEqual({
      iss: 'https://warden.example.com',
      sub: 'system:warden:agent:agents:support-bot',
      aud: 'warden-minio',
      iat,
      nbf: iat,
      exp: iat + 60,
      jti: 'j1',
    });
  });

  it('carries session tags where AWS reads them', () => {
    const req = request({ provider: awsProvider({ sessionTags: { team: "'reports'" } }) });
    const claims = webIdentityClaims(req, assumeRolePlan(req, NOW), 'https://w', NOW, 'j');
    expect(claims[AWS_TAGS_CLAIM]).toEqual({ principal_tags: { team: ['reports'] } });
  });
});

describe('names', () => {
  it('the role session name names the agent, within 64 characters', () => {
    expect(roleSessionName('agents', 'support-bot')).toBe('warden.agents.support-bot');
    expect(roleSessionName('n'.repeat(63), 'a'.repeat(63))).toHaveLength(64);
  });

  it('the credential id is a digest, not the access key id', () => {
    const id = awsCredentialId('ASIAEXAMPLE000000001');
    expect(id).toMatch(/^aws:[0-9a-f]{16}$/);
    expect(id).not.toContain('ASIA');
  });
});
