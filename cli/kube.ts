/**
 * The CLI's connection to the API server (the I/O edge), built from kubectl's flags: the
 * kubeconfig kubectl would use (--kubeconfig, else KUBECONFIG, ~/.kube/config, in-cluster), the
 * --context, the namespace (-n, else the context's, else "default") and --request-timeout.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import {
  ApiError,
  CACHED_LIST_QUERY,
  KubeConfigApi,
  type ObjectList,
  type RequestOptions,
  resourcePath,
} from '../kube/kube.js';
import { CliError } from './command.js';
import { type GlobalOptions, parseRequestTimeout } from './globals.js';

export const WARDEN_REF = (plural: string) => ({ group: GROUP, version: VERSION, plural });
export const AGENTS = WARDEN_REF(PLURAL.AgentIdentity);

export class CliKube {
  readonly api: KubeConfigApi;
  constructor(
    readonly config: KubeConfig,
    /** -n, or the context's namespace, or "default". */
    readonly namespace: string,
    readonly allNamespaces: boolean,
    private readonly timeoutMs: number | undefined,
  ) {
    this.api = new KubeConfigApi(config);
  }

  /** One request; errors become CliErrors naming `what` and the permission a 403 lacks. */
  async request<T>(
    method: string,
    path: string,
    what: string,
    verbs: string,
    opts: RequestOptions = {},
  ): Promise<T> {
    try {
      return await this.api.request<T>(method, path, {
        ...opts,
        ...(this.timeoutMs ? { signal: AbortSignal.timeout(this.timeoutMs), timeoutMs: this.timeoutMs } : {}),
      });
    } catch (err) {
      throw cliError(err, what, verbs, this.timeoutMs);
    }
  }

  /** Every item of a list, following `continue`. */
  async list<T>(path: string, query: Record<string, string>, what: string): Promise<T[]> {
    const items: T[] = [];
    for await (const page of this.pages<T>(path, query, what)) items.push(...page);
    return items;
  }

  /**
   * A list page by page (`limit`, `continue`), for a reader that keeps only what it needs of each
   * page: memory stays at one page, not the whole list.
   */
  async *pages<T>(
    path: string,
    query: Record<string, string>,
    what: string,
    limit = 500,
    /** Read the API server's watch cache (CACHED_LIST_QUERY): fast, may miss the last moments' writes. */
    cached = false,
  ): AsyncGenerator<T[]> {
    let cont: string | undefined;
    do {
      const page: ObjectList<T> = await this.request<ObjectList<T>>('GET', path, what, 'list', {
        query: {
          ...query,
          limit: String(limit),
          ...(cont ? { continue: cont } : cached ? CACHED_LIST_QUERY : {}),
        },
      });
      // An empty list may answer "items": null.
      yield page.items ?? [];
      cont = page.metadata?.continue || undefined;
    } while (cont);
  }
}

/** Builds the connection from the global flags. */
export function connect(g: GlobalOptions): CliKube {
  const timeoutMs = parseRequestTimeout(g.requestTimeout);
  const config = new KubeConfig();
  try {
    if (g.kubeconfig) config.loadFromFile(g.kubeconfig);
    else config.loadFromDefault();
  } catch (err) {
    throw new CliError(
      `--kubeconfig ${g.kubeconfig ?? '(default)'}: cannot load (${(err as Error).message})`,
    );
  }
  if (g.context) {
    if (!config.getContextObject(g.context)) {
      const known = config.getContexts().map((c) => c.name);
      throw new CliError(
        `--context: context "${g.context}" not found in the kubeconfig (known: ${known.join(', ') || 'none'})`,
      );
    }
    config.setCurrentContext(g.context);
  }
  const current = config.getContextObject(config.getCurrentContext());
  return new CliKube(
    config,
    g.namespace ?? current?.namespace ?? 'default',
    g.allNamespaces === true,
    timeoutMs,
  );
}

function cliError(err: unknown, what: string, verbs: string, timeoutMs: number | undefined): CliError {
  if (err instanceof ApiError) {
    if (err.code === 404) return new CliError(`${what} not found`);
    if (err.code === 403) {
      return new CliError(
        `${what}: forbidden — your kubeconfig user needs ${verbs} on ${what.split(' ')[0]?.toLowerCase()}.${GROUP}`,
      );
    }
  }
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return new CliError(`${what}: no answer within --request-timeout (${timeoutMs} ms)`);
  }
  return new CliError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
}

/** Names of the agents in the namespace, or of the namespaces (completion). */
export async function listNames(kube: CliKube, kind: 'agent' | 'namespace'): Promise<string[]> {
  const path = kind === 'agent' ? resourcePath(AGENTS, kube.namespace) : '/api/v1/namespaces';
  const items = await kube.list<{ metadata?: { name?: string } }>(path, {}, kind);
  return items.flatMap((i) => (i.metadata?.name ? [i.metadata.name] : []));
}
