/** Warden agent SDK (docs/adr/0013-agent-sdks.md). */
export * from './constants.js';
export {
  type Denial,
  type DenialReason,
  denialFromData,
  denialFromMcpError,
  denialFromResponse,
  parseRetryAfter,
  WardenDeniedError,
} from './errors.js';
export {
  currentScope,
  type RequestScope,
  userTokenFromHeaders,
  type WardenContext,
  withRequestScope,
  withUser,
} from './request-context.js';
export { settingsFromEnv, type WardenSettings, WardenSettingsError } from './settings.js';
export { type CallOptions, type PostgresSettings, Warden } from './warden.js';
