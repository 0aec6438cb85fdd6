/**
 * The broker's logger. Redaction is configured here, once, for every field that could carry a
 * credential, so no call site has to remember it. Call sites also never pass tokens in the first
 * place; this is the second line. The field names are core's (core/audit/secret-values.ts), the
 * same that keep secrets out of audit replay data.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { SECRET_FIELD_NAMES } from '../core/audit/secret-values.js';

/** Paths pino censors (any depth we use: top level, one and two levels down). */
export const REDACT_PATHS = [
  ...SECRET_FIELD_NAMES,
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  'headers["x-warden-user-token"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["x-warden-user-token"]',
  ...SECRET_FIELD_NAMES.map((name) => `*.${name}`),
];

export function createBrokerLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  const options = {
    name: 'warden-broker',
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
