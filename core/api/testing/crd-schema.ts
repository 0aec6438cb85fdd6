/**
 * A small, pure re-implementation of what the API server does with a CRD's
 * structural schema — defaulting, structural validation (types, unknown fields,
 * bounds, patterns, enums, list uniqueness) and `x-kubernetes-validations` CEL
 * rules — so unit tests can check that the zod schemas (schemas.ts) and the CRDs
 * give the same verdict on the same objects without a control plane. The
 * integration test crds/crds.int.test.ts checks the CRDs against the real API server.
 *
 * Scope: the keywords crds/*.yaml use. Rules referring to `oldSelf` (transition
 * rules) are skipped: they need an update, which only the real API server has.
 */
import { evaluate } from '@marcbachmann/cel-js';

export interface CrdSchema {
  type?: string;
  format?: string;
  default?: unknown;
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  minimum?: number;
  maximum?: number;
  required?: string[];
  properties?: Record<string, CrdSchema>;
  additionalProperties?: CrdSchema | boolean;
  items?: CrdSchema;
  'x-kubernetes-validations'?: { rule: string; message?: string }[];
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
}

export interface CrdIssue {
  path: string;
  message: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Applies `default`s top-down like the API server: a defaulted object gets its children's defaults too. */
export function applyDefaults(schema: CrdSchema, value: unknown): unknown {
  if (isObject(value)) {
    const out: Record<string, unknown> = { ...value };
    for (const [name, child] of Object.entries(schema.properties ?? {})) {
      if (out[name] === undefined && child.default !== undefined) out[name] = structuredClone(child.default);
      if (out[name] !== undefined) out[name] = applyDefaults(child, out[name]);
    }
    if (isObject(schema.additionalProperties))
      for (const k of Object.keys(out))
        if (!schema.properties?.[k]) out[k] = applyDefaults(schema.additionalProperties, out[k]);
    return out;
  }
  if (Array.isArray(value) && schema.items)
    return value.map((v) => applyDefaults(schema.items as CrdSchema, v));
  return value;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function typeOk(schema: CrdSchema, v: unknown): boolean {
  switch (schema.type) {
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

/** Converts a JSON value to what CEL sees: integers become int (BigInt) as in Kubernetes. */
function toCel(schema: CrdSchema, v: unknown): unknown {
  if (schema.type === 'integer' && typeof v === 'number') return BigInt(v);
  if (Array.isArray(v)) return v.map((x) => toCel(schema.items ?? {}, x));
  if (isObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const child =
        schema.properties?.[k] ?? (isObject(schema.additionalProperties) ? schema.additionalProperties : {});
      out[k] = toCel(child, x);
    }
    return out;
  }
  return v;
}

function walk(schema: CrdSchema, v: unknown, path: string, issues: CrdIssue[]): void {
  const add = (message: string, at = path) => issues.push({ path: at, message });
  if (!typeOk(schema, v)) {
    add(`must be of type ${schema.type}`);
    return;
  }
  if (schema.enum && !schema.enum.includes(v)) add(`must be one of ${schema.enum.join(', ')}`);
  if (typeof v === 'string') {
    if (schema.minLength !== undefined && v.length < schema.minLength)
      add(`shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && v.length > schema.maxLength) add(`longer than ${schema.maxLength}`);
    if (schema.pattern && !new RegExp(schema.pattern).test(v)) add(`does not match ${schema.pattern}`);
    if (schema.format === 'date-time' && !RFC3339.test(v)) add('not a date-time');
  }
  if (typeof v === 'number') {
    if (schema.minimum !== undefined && v < schema.minimum) add(`below ${schema.minimum}`);
    if (schema.maximum !== undefined && v > schema.maximum) add(`above ${schema.maximum}`);
  }
  if (Array.isArray(v)) {
    if (schema.minItems !== undefined && v.length < schema.minItems)
      add(`fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && v.length > schema.maxItems)
      add(`more than ${schema.maxItems} items`);
    const listType = schema['x-kubernetes-list-type'];
    const keyOf = (x: unknown) =>
      listType === 'map'
        ? JSON.stringify(
            (schema['x-kubernetes-list-map-keys'] ?? []).map((k) => (x as Record<string, Json>)[k]),
          )
        : JSON.stringify(x);
    if (listType === 'set' || listType === 'map') {
      const seen = new Set<string>();
      v.forEach((x, i) => {
        const k = keyOf(x);
        if (seen.has(k)) add('duplicate', `${path}[${i}]`);
        seen.add(k);
      });
    }
    v.forEach((x, i) => {
      walk(schema.items ?? {}, x, `${path}[${i}]`, issues);
    });
  }
  if (isObject(v)) {
    const n = Object.keys(v).length;
    if (schema.maxProperties !== undefined && n > schema.maxProperties)
      add(`more than ${schema.maxProperties} properties`);
    for (const r of schema.required ?? []) if (v[r] === undefined) add('required', `${path}.${r}`);
    for (const [k, x] of Object.entries(v)) {
      const child = schema.properties?.[k];
      if (child) walk(child, x, `${path}.${k}`, issues);
      else if (isObject(schema.additionalProperties))
        walk(schema.additionalProperties, x, `${path}.${k}`, issues);
      else if (schema.properties) add('unknown field', `${path}.${k}`);
    }
  }
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    if (/\boldSelf\b/.test(rule.rule)) continue;
    let ok: unknown;
    try {
      ok = evaluate(rule.rule, { self: toCel(schema, v) });
    } catch (err) {
      ok = `error: ${(err as Error).message}`;
    }
    if (ok !== true)
      add(`CEL rule failed (${rule.message ?? rule.rule})${ok === false ? '' : ` ${String(ok)}`}`);
  }
}

/** Defaults then validates `value` against `schema`; returns every issue (empty = accepted). */
export function checkWithCrdSchema(schema: CrdSchema, value: unknown, path = ''): CrdIssue[] {
  const issues: CrdIssue[] = [];
  // What the API server sees is JSON: a key set to undefined is absent.
  const json: unknown = value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  walk(schema, applyDefaults(schema, json), path, issues);
  return issues;
}
