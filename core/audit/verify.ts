/**
 * Verifies an audit trail as a reader with read access only sees it: the AuditRecords, the
 * AgentIdentities' anchored heads and retention cuts, and the published audit keys. Signatures
 * decide each record's standing (signed, legacy, forged) and whether an anchor can be trusted;
 * verifyChain (chain.ts) then checks digests, sequences, links and the anchored heads.
 *
 * Pure (jose verification is computation); the CLI gathers the objects.
 */
import type { AuditRecordSpec } from '../api/index.js';
import {
  type ChainAnchor,
  type ChainProblem,
  type ChainProblemKind,
  digestOf,
  type NamedRecord,
  type PrunedThrough,
  type VerifyResult,
  verifyChain,
} from './chain.js';
import type { AuditKeySet, SignedHead } from './signature.js';

/** The four things `kubectl warden audit --verify` names, each with its own exit bit. */
export type ProblemClass = 'forged' | 'gap' | 'altered' | 'truncated';

export const PROBLEM_CLASS: Record<ChainProblemKind, ProblemClass> = {
  // A record (or anchored head) without the controller's valid signature.
  forged: 'forged',
  // A second record at a sequence: a copy of a genuine record placed under another name.
  duplicate: 'forged',
  // The content no longer matches the digest the controller signed.
  altered: 'altered',
  // A record links to something other than the record before it: that one was replaced.
  'broken-link': 'altered',
  gap: 'gap',
  'missing-start': 'gap',
  truncated: 'truncated',
};

export interface TrailRecord {
  name?: string;
  spec: AuditRecordSpec;
  /** metadata.creationTimestamp, set by the API server (a client cannot choose it). */
  createdAt?: string;
}

export interface TrailAgent {
  /** status.audit.head */
  head?: Partial<SignedHead>;
  /** status.audit.prunedThrough, parsed */
  pruned?: PrunedThrough;
  /** status.audit.pruned: when and by which limit retention last moved the cut. */
  prunedBy?: { time?: string; reason?: string; limit?: string };
}

export interface TrailInput {
  namespace: string;
  records: readonly TrailRecord[];
  /** The AgentIdentities of the namespace (in scope), by name. */
  agents: Readonly<Record<string, TrailAgent>>;
  keys: AuditKeySet;
  /**
   * When the controller began signing (ms): an unsigned record the API server created before it
   * is legacy, any later one is forged. Undefined: every unsigned record is forged.
   */
  signingSince?: number;
}

/**
 * Whether an unsigned record is legacy: the API server created it (creationTimestamp, which no
 * client chooses) before audit signing began. creationTimestamp has whole seconds, so a record
 * created in the second signing began counts as after it: unsigned, it is forged (fail closed).
 */
export function createdBeforeSigning(
  createdAt: string | undefined,
  signingSince: number | undefined,
): boolean {
  if (signingSince === undefined || !createdAt) return false;
  const created = Date.parse(createdAt);
  return Number.isFinite(created) && created < Math.floor(signingSince / 1000) * 1000;
}

/**
 * Decides one record's standing (signature) and checks its digest, keeping what the chain checks
 * need without its entries: a reader streams a big trail page by page and holds ~300 bytes per
 * record, not the records (kubectl warden audit --verify).
 */
export async function examineRecord(
  namespace: string,
  r: TrailRecord,
  keys: AuditKeySet,
  signingSince?: number,
): Promise<NamedRecord> {
  const { entries, signature: _signature, ...rest } = r.spec;
  const base = {
    ...(r.name ? { name: r.name } : {}),
    spec: { ...rest, entries: [] },
    digestOk: digestOf(r.spec) === r.spec.digest,
    entryCount: entries.length,
  };
  const verdict = await keys.verifyRecord(namespace, r.spec);
  if (verdict.ok) return { ...base, standing: 'signed' };
  if (verdict.problem === 'missing' && createdBeforeSigning(r.createdAt, signingSince)) {
    return { ...base, standing: 'legacy' };
  }
  const why =
    verdict.problem === 'missing'
      ? `it is not signed, and it was created ${r.createdAt ?? '(time unknown)'}, after audit signing began${signingSince !== undefined ? ` (${new Date(signingSince).toISOString()})` : ''}`
      : verdict.message;
  return { ...base, standing: 'forged', why };
}

/** Decides every record's standing and anchor, then checks the chains. */
export async function verifyTrail(input: TrailInput): Promise<VerifyResult> {
  const named: NamedRecord[] = [];
  for (const r of input.records)
    named.push(await examineRecord(input.namespace, r, input.keys, input.signingSince));
  return verifyExamined({ ...input, records: named });
}

/** verifyTrail on records already examined (examineRecord), e.g. streamed page by page. */
export async function verifyExamined(
  input: Omit<TrailInput, 'records'> & { records: readonly NamedRecord[] },
): Promise<VerifyResult> {
  const named = [...input.records];
  const anchors: Record<string, ChainAnchor> = {};
  const pruned: Record<string, PrunedThrough> = {};
  const headProblems: ChainProblem[] = [];
  for (const [agent, a] of Object.entries(input.agents)) {
    if (a.pruned) pruned[agent] = a.pruned;
    if (!a.head) continue;
    const verdict = await input.keys.verifyHead(input.namespace, agent, a.head);
    if (verdict.ok && typeof a.head.sequence === 'number' && typeof a.head.digest === 'string') {
      anchors[agent] = { sequence: a.head.sequence, digest: a.head.digest };
    } else if (!verdict.ok) {
      headProblems.push({
        agent,
        sequence: a.head.sequence ?? -1,
        kind: 'forged',
        message: `the anchored head of agent ${agent} (AgentIdentity status.audit.head) was not written by the Warden controller: ${verdict.message}`,
      });
    }
  }

  const result = verifyChain(named, anchors, pruned);
  const withRecords = new Set(named.filter((r) => r.standing !== 'forged').map((r) => r.spec.agent));
  for (const agent of [...withRecords].sort()) {
    if (anchors[agent] !== undefined) continue;
    const why = !input.agents[agent]
      ? `there is no AgentIdentity ${agent} in namespace ${input.namespace}`
      : input.agents[agent]?.head
        ? 'its AgentIdentity carries a head the controller did not sign'
        : 'its AgentIdentity has no status.audit.head yet';
    result.notes.push({
      kind: 'unanchored',
      agent,
      message: `the chain of agent ${agent} is not anchored (${why}): deleting its newest records cannot be detected`,
    });
  }
  // Retention is not a problem, but a reader should see what is no longer there and why.
  for (const [agent, a] of Object.entries(input.agents).sort(([x], [y]) => x.localeCompare(y))) {
    if (!a.pruned) continue;
    const by = a.prunedBy;
    const why = by?.limit ? ` (${by.limit}${by.time ? `, last pruned ${by.time}` : ''})` : '';
    result.notes.push({
      kind: 'pruned',
      agent,
      message: `records 0..${a.pruned.sequence} of agent ${agent} were pruned by retention${why}; what remains verifies from the retention anchor #${a.pruned.sequence}`,
    });
  }
  result.problems.push(...headProblems);
  result.ok = result.problems.length === 0;
  return result;
}
