/**
 * The gateway's serving certificate, reloaded when its files change (a renewed Secret: the kubelet
 * swaps the volume's `..data` symlink; cert-manager renews before expiry), without a restart.
 * Watches both files' directories and, because file-change events are not delivered on every
 * volume type, also compares the files' contents every `pollMs`. A new pair is applied only when
 * it is usable (certificate and key match, PEM parses); otherwise the gateway keeps serving the
 * pair it has and logs why. New connections get the new certificate; open ones keep theirs.
 */
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';

export interface TlsPair {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface TlsReloadOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** The pair being served now (read at start). */
  readonly initial: TlsPair;
  /** Installs a checked pair on every listener; throws to refuse it. */
  readonly apply: (pair: TlsPair) => void;
  readonly log: Pick<Logger, 'info' | 'error'>;
  /** Content check interval (default 30 s). */
  readonly pollMs?: number;
}

export interface TlsReloader {
  /** Reads the files now and applies them when they changed; resolves with whether it did. */
  check(): Promise<boolean>;
  stop(): void;
}

const fingerprint = (p: TlsPair) =>
  createHash('sha256').update(p.certPem).update('\0').update(p.keyPem).digest('hex');

export function watchTlsFiles(o: TlsReloadOptions): TlsReloader {
  let served = fingerprint(o.initial);
  /** The last pair refused, so a broken Secret is logged once, not every poll. */
  let refused = '';
  let running: Promise<boolean> | undefined;
  let again = false;

  const load = async (): Promise<boolean> => {
    let pair: TlsPair;
    try {
      pair = { certPem: await readFile(o.certFile, 'utf8'), keyPem: await readFile(o.keyFile, 'utf8') };
    } catch (err) {
      // Mid-swap or removed: the next event or poll reads it again.
      o.log.error(
        { err: (err as Error).message },
        'gateway TLS files unreadable; serving the current certificate',
      );
      return false;
    }
    const f = fingerprint(pair);
    if (f === served || f === refused) return false;
    try {
      // Validates the pair (key matches certificate) before any listener sees it.
      createSecureContext({ cert: pair.certPem, key: pair.keyPem });
      o.apply(pair);
    } catch (err) {
      refused = f;
      o.log.error(
        { err: (err as Error).message, cert: o.certFile, key: o.keyFile },
        'gateway TLS files changed but are not a usable certificate and key; serving the current certificate',
      );
      return false;
    }
    served = f;
    refused = '';
    o.log.info({ cert: o.certFile }, 'gateway TLS certificate reloaded');
    return true;
  };
  const check = (): Promise<boolean> => {
    if (running) {
      again = true;
      return running;
    }
    running = load().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        void check();
      }
    });
    return running;
  };

  let debounce: NodeJS.Timeout | undefined;
  const onEvent = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void check(), 200);
    debounce.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(o.certFile), dirname(o.keyFile)])) {
    try {
      const w = watch(dir, onEvent);
      w.on('error', () => {}); // the poll still runs
      w.unref();
      watchers.push(w);
    } catch {
      // No watch support here: the poll does it.
    }
  }
  const poll = setInterval(() => void check(), o.pollMs ?? 30_000);
  poll.unref();
  return {
    check,
    stop() {
      clearInterval(poll);
      clearTimeout(debounce);
      for (const w of watchers) w.close();
    },
  };
}
