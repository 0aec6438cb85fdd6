/**
 * Offline policy tests (`kubectl warden test <dir>`): YAML files hold AccessPolicy
 * documents, optional AgentIdentity documents (labels, suspension) and
 * `kind: PolicyTest` documents with cases (input → expected decision).
 * This module is pure: it takes file texts and returns a report.
 *
 *   kind: PolicyTest
 *   metadata: {name: support}
 *   namespace: agents            # default for cases; else the policies' namespace, else "default"
 *   cases:
 *     - name: support staff with a ticket may create issues
 *       agent: support-bot
 *       user: {sub: alice, groups: [support]}     # omit for "agent acting alone"
 *       request: {target: jira, tool: jira.create_issue, args: {project: SUP}, time: "2026-01-05T10:00:00Z"}
 *       context: {ticketId: SUP-1}
 *       expect: {decision: Allow, policy: agents/support}
 */
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { formatPath } from '../core/api/validate.js';
import {
  buildPolicySet,
  type CompiledPolicy,
  compileAccessPolicy,
  type Decision,
  decide,
  formatCompileError,
  type PolicyInput,
} from '../core/policy/index.js';

export interface SourceFile {
  readonly path: string;
  readonly text: string;
}

const DECISION_REASONS = [
  'Allowed',
  'DeniedByPolicy',
  'NoMatchingAllow',
  'ConditionFailed',
  'EvaluationError',
  'InputTooLarge',
  'InvalidInput',
  'CostExceeded',
  'AgentSuspended',
] as const;

const caseSchema = z.strictObject({
  name: z.string().min(1),
  agent: z.string().min(1),
  namespace: z.string().min(1).optional(),
  user: z
    .strictObject({
      sub: z.string().min(1),
      issuer: z.string().optional(),
      groups: z.array(z.string()).optional(),
      department: z.string().optional(),
      claims: z.record(z.string(), z.unknown()).optional(),
    })
    .nullable()
    .optional(),
  request: z.strictObject({
    kind: z.enum(['mcp', 'http', 'postgresql']).optional(),
    target: z.string().min(1),
    tool: z.string().optional(),
    args: z.record(z.string(), z.unknown()).optional(),
    method: z.string().optional(),
    path: z.string().optional(),
    time: z.union([z.string(), z.date()]).optional(),
    /** The agents a delegated call came through before the case's agent, origin first. */
    chain: z.array(z.strictObject({ name: z.string().min(1), namespace: z.string().min(1) })).optional(),
  }),
  context: z
    .strictObject({
      purpose: z.string().optional(),
      ticketId: z.string().optional(),
      model: z.string().optional(),
      chainStep: z.number().int().optional(),
      geo: z.string().optional(),
    })
    .optional(),
  expect: z.strictObject({
    decision: z.enum(['Allow', 'Deny']),
    reason: z.enum(DECISION_REASONS).optional(),
    policy: z.string().nullable().optional(),
    rule: z.number().int().nullable().optional(),
    condition: z.string().nullable().optional(),
  }),
});

const testDocSchema = z.object({
  apiVersion: z.string().optional(),
  kind: z.literal('PolicyTest'),
  metadata: z.object({ name: z.string().optional() }).optional(),
  namespace: z.string().min(1).optional(),
  cases: z.array(caseSchema).min(1),
});

type TestCase = z.infer<typeof caseSchema>;

interface AgentDoc {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly suspended: boolean;
  readonly suspendReason: string | undefined;
}

export interface CaseResult {
  readonly file: string;
  readonly name: string;
  readonly passed: boolean;
  /** What differed, one line per field. */
  readonly mismatches: readonly string[];
  readonly decision: Decision | null;
}

export interface TestReport {
  /** Problems that make the run fail regardless of cases: unreadable YAML, invalid policies or test documents. */
  readonly problems: readonly string[];
  readonly cases: readonly CaseResult[];
  readonly policies: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toInput(c: TestCase, now: Date): PolicyInput {
  const r = c.request;
  const kind =
    r.kind ??
    (r.tool !== undefined ? 'mcp' : r.method !== undefined || r.path !== undefined ? 'http' : 'postgresql');
  const time = r.time === undefined ? now : r.time instanceof Date ? r.time : new Date(r.time);
  return {
    user: c.user ?? null,
    request: {
      kind,
      target: r.target,
      tool: r.tool,
      args: r.args,
      method: r.method,
      path: r.path,
      time,
      ...(r.chain ? { chain: r.chain } : {}),
    },
    context: c.context ?? null,
  };
}

function compareDecision(expected: TestCase['expect'], d: Decision): string[] {
  const out: string[] = [];
  if (d.decision !== expected.decision)
    out.push(`decision: expected ${expected.decision}, got ${d.decision}`);
  if (expected.reason !== undefined && d.reason !== expected.reason)
    out.push(`reason: expected ${expected.reason}, got ${d.reason}`);
  if (expected.policy !== undefined && d.policy !== expected.policy)
    out.push(`policy: expected ${expected.policy ?? 'none'}, got ${d.policy ?? 'none'}`);
  if (expected.rule !== undefined && d.rule !== expected.rule)
    out.push(`rule: expected ${expected.rule ?? 'none'}, got ${d.rule ?? 'none'}`);
  if (expected.condition !== undefined && d.condition !== expected.condition) {
    out.push(`condition: expected ${expected.condition ?? 'none'}, got ${d.condition ?? 'none'}`);
  }
  return out;
}

/** Run every PolicyTest case in `files` against every AccessPolicy in `files`. `now` is the default request time. */
export function runPolicyTests(files: readonly SourceFile[], now: Date): TestReport {
  const problems: string[] = [];
  const policies: CompiledPolicy[] = [];
  const agents = new Map<string, AgentDoc>();
  const suites: { file: string; namespace: string | undefined; cases: TestCase[]; where: string }[] = [];

  for (const file of files) {
    const docs = parseAllDocuments(file.text);
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((doc, index) => {
      const where = `${file.path} (document ${index + 1})`;
      if (doc.errors.length > 0) {
        problems.push(`${where}: invalid YAML: ${doc.errors[0]?.message.split('\n')[0]}`);
        return;
      }
      const value: unknown = doc.toJS({ maxAliasCount: 50 });
      if (value === null || value === undefined) return;
      if (!isObject(value)) {
        problems.push(`${where}: expected a mapping with a kind`);
        return;
      }
      const metadata = isObject(value.metadata) ? value.metadata : {};
      const name = typeof metadata.name === 'string' ? metadata.name : '';
      const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : 'default';
      switch (value.kind) {
        case 'AccessPolicy': {
          if (!name) {
            problems.push(`${where}: AccessPolicy needs metadata.name`);
            return;
          }
          if (!isObject(value.spec)) {
            problems.push(`${where}: AccessPolicy ${namespace}/${name} has no spec`);
            return;
          }
          const spec = value.spec as unknown as Parameters<typeof compileAccessPolicy>[0]['spec'];
          const result = compileAccessPolicy({ namespace, name, spec });
          if (result.ok) policies.push(result.compiled);
          else
            for (const e of result.errors)
              problems.push(`${file.path}: ${formatCompileError({ namespace, name }, e)}`);
          return;
        }
        case 'AgentIdentity': {
          const spec = isObject(value.spec) ? value.spec : {};
          const labels = isObject(metadata.labels) ? (metadata.labels as Record<string, string>) : {};
          agents.set(`${namespace}/${name}`, {
            name,
            namespace,
            labels,
            suspended: spec.suspended === true,
            suspendReason: typeof spec.suspendReason === 'string' ? spec.suspendReason : undefined,
          });
          return;
        }
        case 'PolicyTest': {
          const parsed = testDocSchema.safeParse(value);
          if (!parsed.success) {
            for (const issue of parsed.error.issues)
              problems.push(
                `${where}: PolicyTest ${formatPath(issue.path) || '(document)'}: ${issue.message}`,
              );
            return;
          }
          suites.push({ file: file.path, namespace: parsed.data.namespace, cases: parsed.data.cases, where });
          return;
        }
        default:
          // Other Kubernetes objects (CredentialProviders, ...) may live in the same repository: ignored.
          return;
      }
    });
  }

  const policyNamespaces = [...new Set(policies.map((p) => p.namespace))];
  const defaultNamespace = policyNamespaces.length === 1 ? (policyNamespaces[0] as string) : 'default';
  const cases: CaseResult[] = [];
  for (const suite of suites) {
    for (const c of suite.cases) {
      const namespace = c.namespace ?? suite.namespace ?? defaultNamespace;
      const agent = agents.get(`${namespace}/${c.agent}`) ?? {
        name: c.agent,
        namespace,
        labels: {},
        suspended: false,
        suspendReason: undefined,
      };
      const input = toInput(c, now);
      if (Number.isNaN(input.request.time.getTime())) {
        cases.push({
          file: suite.file,
          name: c.name,
          passed: false,
          mismatches: [`request.time: '${String(c.request.time)}' is not an RFC 3339 time`],
          decision: null,
        });
        continue;
      }
      const decision = decide(buildPolicySet(policies, agent), input);
      const mismatches = compareDecision(c.expect, decision);
      cases.push({ file: suite.file, name: c.name, passed: mismatches.length === 0, mismatches, decision });
    }
  }
  if (suites.length === 0 && problems.length === 0)
    problems.push('no PolicyTest documents found (kind: PolicyTest with cases)');
  return { problems, cases, policies: policies.length };
}

/** Readable report; `passed` is true when there are no problems and every case passed. */
export function formatReport(report: TestReport): { text: string; passed: boolean } {
  const lines: string[] = [];
  for (const p of report.problems) lines.push(`ERROR ${p}`);
  if (report.problems.length > 0) lines.push('');
  let file = '';
  for (const c of report.cases) {
    if (c.file !== file) {
      file = c.file;
      lines.push(file);
    }
    lines.push(`  ${c.passed ? 'PASS' : 'FAIL'} ${c.name}`);
    if (!c.passed) {
      for (const m of c.mismatches) lines.push(`       ${m}`);
      if (c.decision) lines.push(`       why: ${c.decision.message}`);
    }
  }
  const failed = report.cases.filter((c) => !c.passed).length;
  const passed = report.cases.length - failed;
  lines.push('');
  lines.push(
    `${passed} passed, ${failed} failed, ${report.problems.length} ${report.problems.length === 1 ? 'error' : 'errors'} (${report.policies} ${report.policies === 1 ? 'policy' : 'policies'})`,
  );
  return { text: lines.join('\n'), passed: failed === 0 && report.problems.length === 0 };
}
