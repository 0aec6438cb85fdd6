/** The resources the operator reads and writes, as API path parts. */
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import type { ResourceRef } from './kube.js';

export const AGENT_IDENTITIES: ResourceRef = { group: GROUP, version: VERSION, plural: PLURAL.AgentIdentity };
export const ACCESS_POLICIES: ResourceRef = { group: GROUP, version: VERSION, plural: PLURAL.AccessPolicy };
export const CREDENTIAL_PROVIDERS: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: PLURAL.CredentialProvider,
};
export const SERVICE_ACCOUNTS: ResourceRef = { group: '', version: 'v1', plural: 'serviceaccounts' };
export const SECRETS: ResourceRef = { group: '', version: 'v1', plural: 'secrets' };
