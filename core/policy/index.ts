/** Public surface of the policy engine (pure: no I/O, no clock reads except evaluation timing). */
export { DEFAULT_BOUNDS, type PolicyBounds } from './bounds.js';
export {
  type CompileOptions,
  type CompilePolicyInput,
  type CompilePolicyResult,
  compileAccessPolicy,
  formatCompileError,
} from './compile.js';
export type {
  CompiledCondition,
  CompiledCredential,
  CompiledHttpMatch,
  CompiledPolicy,
  CompiledRule,
  CompiledSelector,
} from './compiled.js';
export { type CredentialForResult, credentialFor, type RuleCredentialGrant } from './credential.js';
export { couldAllowTool, type DecideOptions, decide } from './decide.js';
export {
  type ConditionExplanation,
  type ConditionResult,
  type Explanation,
  explain,
  type PolicyExplanation,
  type RuleExplanation,
  type RuleOutcome,
} from './explain.js';
export { buildPolicySet, type PolicySet, type PolicySetAgent, type PolicySetOptions } from './policy-set.js';
export { enableLinearRegexFallback } from './regex-safety.js';
export { decideSessionTraffic } from './session.js';
export type * from './types.js';
