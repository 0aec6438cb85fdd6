/**
 * Serving certificate from files another tool manages (cert-manager mounts its Secret as
 * tls.crt, tls.key and ca.crt). Warden then issues nothing and patches no caBundle:
 * cert-manager's CA injector keeps the webhook configuration in step.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SECRET_CA_KEY, SECRET_CERT_KEY, SECRET_KEY_KEY, type TlsMaterial } from './tls.js';

/** Anything that yields the current serving material (the Secret-backed TlsStore, or files). */
export interface TlsSource {
  ensure(): Promise<TlsMaterial>;
}

export class FileTlsSource implements TlsSource {
  constructor(private readonly dir: string) {}

  async ensure(): Promise<TlsMaterial> {
    const read = async (name: string, required: boolean): Promise<string> => {
      try {
        return await readFile(join(this.dir, name), 'utf8');
      } catch (err) {
        if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return '';
        throw new Error(
          `reading the serving certificate from ${join(this.dir, name)} failed (${(err as NodeJS.ErrnoException).code ?? 'error'}); --tls-cert-dir must hold ${SECRET_CERT_KEY} and ${SECRET_KEY_KEY}`,
        );
      }
    };
    const [certPem, keyPem, caBundlePem] = await Promise.all([
      read(SECRET_CERT_KEY, true),
      read(SECRET_KEY_KEY, true),
      read(SECRET_CA_KEY, false),
    ]);
    if (!certPem.includes('BEGIN CERTIFICATE') || !keyPem.includes('PRIVATE KEY')) {
      throw new Error(`${this.dir}: ${SECRET_CERT_KEY} or ${SECRET_KEY_KEY} is not PEM`);
    }
    return { certPem, keyPem, caBundlePem };
  }
}
