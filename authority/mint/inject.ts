/**
 * The header a credential travels in (CredentialProvider spec.inject). The broker strips any
 * header of the same name the agent sent, so the name and value must be safe to set verbatim:
 * a token containing CR/LF would let an upstream response split the request.
 */
import type { InjectSpec } from '../../core/api/generated/credential-provider.js';
import { MintError } from './types.js';

export const DEFAULT_INJECT_HEADER = 'Authorization';
export const DEFAULT_INJECT_FORMAT = 'Bearer {token}';

/** RFC 9110 token characters: the only ones allowed in a header name. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Visible ASCII, space and tab: what a header value may carry without being re-encoded. */
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

/** Builds `{header: value}` from a secret or token, validating both. */
export function injectHeader(
  inject: InjectSpec | undefined,
  token: string,
  where: string,
  tokenSource = 'the credential',
): Record<string, string> {
  const header = inject?.header ?? DEFAULT_INJECT_HEADER;
  const format = inject?.format ?? DEFAULT_INJECT_FORMAT;
  if (!HEADER_NAME.test(header)) {
    throw new MintError(
      'InvalidProvider',
      `${where} spec.inject.header: ${JSON.stringify(header)} is not a valid HTTP header name`,
    );
  }
  if (!format.includes('{token}')) {
    throw new MintError(
      'InvalidProvider',
      `${where} spec.inject.format: must contain the {token} placeholder, e.g. "Bearer {token}"`,
    );
  }
  if (!HEADER_VALUE.test(format)) {
    throw new MintError(
      'InvalidProvider',
      `${where} spec.inject.format: contains control or non-ASCII characters`,
    );
  }
  if (!HEADER_VALUE.test(token) || token === '') {
    // Never echo the value: it is the secret.
    throw new MintError(
      'InvalidProvider',
      `${where}: ${tokenSource} is empty or contains control/non-ASCII characters (e.g. a trailing newline in a Secret); fix the value`,
    );
  }
  return { [header]: format.replaceAll('{token}', token) };
}
