/**
 * Reading Warden objects for CLI commands (the I/O edge). Uses the kubeconfig
 * kubectl would use (KUBECONFIG, ~/.kube/config, in-cluster).
 */
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import { CliError } from './command.js';

export interface KubeContext {
  readonly config: KubeConfig;
  /** Namespace of the current context, or "default". */
  readonly namespace: string;
}

export function loadKubeContext(): KubeContext {
  const config = new KubeConfig();
  config.loadFromDefault();
  const current = config.getContextObject(config.getCurrentContext());
  return { config, namespace: current?.namespace ?? 'default' };
}

interface ObjectLike {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: unknown;
}

function apiError(err: unknown, what: string): CliError {
  const code = (err as { code?: number }).code;
  if (code === 404) return new CliError(`${what} not found`);
  if (code === 403)
    return new CliError(`${what}: forbidden — your kubeconfig user needs get/list on ${GROUP} resources`);
  return new CliError(`${what}: ${(err as Error).message ?? String(err)}`);
}

export async function listAccessPolicies(ctx: KubeContext, namespace: string): Promise<ObjectLike[]> {
  const api = ctx.config.makeApiClient(CustomObjectsApi);
  try {
    const list = (await api.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL.AccessPolicy,
    })) as {
      items?: ObjectLike[];
    };
    return list.items ?? [];
  } catch (err) {
    throw apiError(err, `AccessPolicies in namespace ${namespace}`);
  }
}

export async function getAgentIdentity(
  ctx: KubeContext,
  namespace: string,
  name: string,
): Promise<ObjectLike> {
  const api = ctx.config.makeApiClient(CustomObjectsApi);
  try {
    return (await api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL.AgentIdentity,
      name,
    })) as ObjectLike;
  } catch (err) {
    throw apiError(err, `AgentIdentity ${namespace}/${name}`);
  }
}
