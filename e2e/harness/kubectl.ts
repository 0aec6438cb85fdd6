/** Runs kubectl against a given kubeconfig; never throws on a non-zero exit. */
import { execFile } from 'node:child_process';

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface KubectlOptions {
  /** Text written to kubectl's stdin (e.g. a manifest for `apply -f -`). */
  input?: string;
  timeoutMs?: number;
}

export function kubectlAt(
  kubeconfigPath: string,
  args: string[],
  opts: KubectlOptions = {},
): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      args,
      {
        env: { ...process.env, KUBECONFIG: kubeconfigPath },
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ stdout, stderr, code });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}
