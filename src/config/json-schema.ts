// An action's params_schema: checked once when the policy loads, then used to validate each proposal's params.
// @cfworker/json-schema validates without eval (Workers forbid it) but checks nothing about a schema itself, so
// the keyword check below is what turns a typo like "require" into an error instead of a schema that allows all.

import type { Schema, SchemaDraft } from "@cfworker/json-schema";
import { dereference, format, Validator } from "@cfworker/json-schema";
import type { ErrorDetail } from "../errors.ts";
import { closest, formatPath } from "../lib/details.ts";
import { isPlainObject } from "./problems.ts";

const TYPES = new Set(["array", "boolean", "integer", "null", "number", "object", "string"]);

type Kind =
  | "schema"
  | "schemaOrSchemaArray"
  | "schemaArray"
  | "nonEmptySchemaArray"
  | "schemaMap"
  | "patternSchemaMap"
  | "dependencies"
  | "string"
  | "regex"
  | "format"
  | "boolean"
  | "number"
  | "positiveNumber"
  | "numberOrBoolean"
  | "count"
  | "stringArray"
  | "stringArrayMap"
  | "type"
  | "array"
  | "object"
  | "any";

/** Every keyword the validator understands, plus the annotations it ignores, and what each one holds. */
const KEYWORDS: Record<string, Kind> = {
  $id: "string",
  id: "string",
  $schema: "string",
  $ref: "string",
  $anchor: "string",
  $comment: "string",
  $defs: "schemaMap",
  definitions: "schemaMap",
  $vocabulary: "object",
  $recursiveAnchor: "boolean",
  $recursiveRef: "string",
  type: "type",
  enum: "array",
  const: "any",
  required: "stringArray",
  not: "schema",
  anyOf: "nonEmptySchemaArray",
  allOf: "nonEmptySchemaArray",
  oneOf: "nonEmptySchemaArray",
  if: "schema",
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's own keyword, in a plain lookup table
  then: "schema",
  else: "schema",
  format: "format",
  properties: "schemaMap",
  patternProperties: "patternSchemaMap",
  additionalProperties: "schema",
  unevaluatedProperties: "schema",
  minProperties: "count",
  maxProperties: "count",
  propertyNames: "schema",
  dependentRequired: "stringArrayMap",
  dependentSchemas: "schemaMap",
  dependencies: "dependencies",
  prefixItems: "schemaArray",
  items: "schemaOrSchemaArray",
  additionalItems: "schema",
  unevaluatedItems: "schema",
  contains: "schema",
  minContains: "count",
  maxContains: "count",
  minItems: "count",
  maxItems: "count",
  uniqueItems: "boolean",
  minimum: "number",
  maximum: "number",
  exclusiveMinimum: "numberOrBoolean",
  exclusiveMaximum: "numberOrBoolean",
  multipleOf: "positiveNumber",
  minLength: "count",
  maxLength: "count",
  pattern: "regex",
  // Annotations: no effect on validation, harmless.
  title: "string",
  description: "string",
  default: "any",
  examples: "array",
  deprecated: "boolean",
  readOnly: "boolean",
  writeOnly: "boolean",
  contentEncoding: "string",
  contentMediaType: "string",
  contentSchema: "any",
};
const VOCABULARY = Object.keys(KEYWORDS);

const DRAFTS: ReadonlyArray<[RegExp, SchemaDraft]> = [
  [/draft-04\/schema#?$/, "4"],
  [/draft-07\/schema#?$/, "7"],
  [/2019-09\/schema$/, "2019-09"],
  [/2020-12\/schema$/, "2020-12"],
];

function compiles(pattern: string): boolean {
  try {
    // The validator compiles patterns with the `u` flag; so must the check.
    new RegExp(pattern, "u");
    return true;
  } catch {
    return false;
  }
}

function isCount(value: unknown): boolean {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Structural problems of a schema, each at its own path under `root`. */
function checkSchema(node: unknown, root: string, path: (string | number)[], out: ErrorDetail[]): void {
  const at = (...more: (string | number)[]) => formatPath(root, [...path, ...more]);
  if (typeof node === "boolean") return;
  if (!isPlainObject(node)) {
    out.push({ path: at(), message: "must be a JSON Schema (an object, or true/false)" });
    return;
  }
  for (const [keyword, value] of Object.entries(node)) {
    const kind = KEYWORDS[keyword];
    if (kind === undefined) {
      if (keyword.startsWith("x-")) continue; // vendor extension, by convention ignored
      const guess = closest(keyword, VOCABULARY);
      out.push({
        path: at(keyword),
        message: `is not a JSON Schema keyword this validator understands${guess ? ` (did you mean "${guess}"?)` : ""}`,
      });
      continue;
    }
    const bad = (message: string) => out.push({ path: at(keyword), message });
    switch (kind) {
      case "schema":
        checkSchema(value, root, [...path, keyword], out);
        break;
      case "schemaOrSchemaArray":
        if (Array.isArray(value))
          for (const [i, s] of value.entries()) checkSchema(s, root, [...path, keyword, i], out);
        else checkSchema(value, root, [...path, keyword], out);
        break;
      case "schemaArray":
      case "nonEmptySchemaArray":
        if (!Array.isArray(value)) bad("must be an array of schemas");
        else if (kind === "nonEmptySchemaArray" && value.length === 0) bad("must list at least one schema");
        else for (const [i, s] of value.entries()) checkSchema(s, root, [...path, keyword, i], out);
        break;
      case "schemaMap":
      case "patternSchemaMap":
        if (!isPlainObject(value)) bad("must be an object of schemas");
        else
          for (const [key, sub] of Object.entries(value)) {
            if (kind === "patternSchemaMap" && !compiles(key))
              out.push({ path: at(keyword, key), message: "is not a valid regular expression" });
            checkSchema(sub, root, [...path, keyword, key], out);
          }
        break;
      case "dependencies":
        if (!isPlainObject(value)) bad("must be an object");
        else
          for (const [key, sub] of Object.entries(value)) {
            if (Array.isArray(sub)) {
              if (!sub.every((s) => typeof s === "string"))
                out.push({ path: at(keyword, key), message: "must be an array of property names" });
            } else checkSchema(sub, root, [...path, keyword, key], out);
          }
        break;
      case "string":
        if (typeof value !== "string") bad("must be a string");
        break;
      case "regex":
        if (typeof value !== "string" || !compiles(value)) bad("must be a valid regular expression");
        break;
      case "format":
        if (typeof value !== "string" || !Object.hasOwn(format, value))
          bad(`must be a format the validator checks: ${Object.keys(format).join(", ")}`);
        break;
      case "boolean":
        if (typeof value !== "boolean") bad("must be true or false");
        break;
      case "number":
        if (typeof value !== "number") bad("must be a number");
        break;
      case "positiveNumber":
        if (typeof value !== "number" || !(value > 0)) bad("must be a number greater than 0");
        break;
      case "numberOrBoolean":
        if (typeof value !== "number" && typeof value !== "boolean") bad("must be a number");
        break;
      case "count":
        if (!isCount(value)) bad("must be a non-negative integer");
        break;
      case "stringArray":
        if (!Array.isArray(value) || !value.every((s) => typeof s === "string")) bad("must be an array of strings");
        break;
      case "stringArrayMap":
        if (
          !isPlainObject(value) ||
          !Object.values(value).every((v) => Array.isArray(v) && v.every((s) => typeof s === "string"))
        )
          bad("must map property names to arrays of property names");
        break;
      case "type": {
        const names = Array.isArray(value) ? value : [value];
        if (names.length === 0 || !names.every((t) => typeof t === "string" && TYPES.has(t)))
          bad(`must be one of ${[...TYPES].join(", ")} (or an array of them)`);
        break;
      }
      case "array":
        if (!Array.isArray(value)) bad("must be an array");
        break;
      case "object":
        if (!isPlainObject(value)) bad("must be an object");
        break;
      case "any":
        break;
    }
  }
}

/** Every `$ref` must point at a schema in this document: the validator would throw on it mid-request. */
function checkRefs(
  node: unknown,
  lookup: Record<string, unknown>,
  root: string,
  path: (string | number)[],
  out: ErrorDetail[],
): void {
  if (Array.isArray(node)) {
    for (const [i, child] of node.entries()) checkRefs(child, lookup, root, [...path, i], out);
    return;
  }
  if (!isPlainObject(node)) return;
  const ref = node.$ref;
  if (typeof ref === "string") {
    // dereference() records the resolved absolute URI on the node (non-enumerable); validate() looks it up the same way.
    const absolute = (node as Schema).__absolute_ref__ ?? ref;
    if (lookup[absolute] === undefined)
      out.push({
        path: formatPath(root, [...path, "$ref"]),
        message: "does not resolve to a schema in this params_schema",
      });
  }
  for (const [key, child] of Object.entries(node)) {
    if (key === "enum" || key === "const" || key === "default" || key === "examples") continue; // data, not schemas
    checkRefs(child, lookup, root, [...path, key], out);
  }
}

export type CompiledSchema = { ok: true; validator: Validator } | { ok: false; details: ErrorDetail[] };

/** Each compiled validator's schema (the library keeps its own private), to quote a failed keyword's value. */
const schemas = new WeakMap<Validator, unknown>();

/**
 * Checks `schema` (the params_schema at `root`) and builds its validator. The schema is copied first:
 * the validator annotates the objects it is given, and the caller's may be frozen or shared.
 */
export function compileParamsSchema(schema: unknown, root: string): CompiledSchema {
  if (!isPlainObject(schema)) return { ok: false, details: [{ path: root, message: "must be a JSON Schema object" }] };
  const details: ErrorDetail[] = [];
  let draft: SchemaDraft = "2020-12";
  const declared = schema.$schema;
  if (declared !== undefined) {
    const match = typeof declared === "string" ? DRAFTS.find(([re]) => re.test(declared)) : undefined;
    if (match) draft = match[1];
    else
      details.push({
        path: `${root}.$schema`,
        message: "must name draft-04, draft-07, 2019-09 or 2020-12 (the drafts the validator supports)",
      });
  }
  checkSchema(schema, root, [], details);
  if (details.length > 0) return { ok: false, details };
  const copy = structuredClone(schema) as Schema;
  try {
    const lookup = dereference(copy) as Record<string, unknown>;
    checkRefs(copy, lookup, root, [], details);
    if (details.length > 0) return { ok: false, details };
    const validator = new Validator(copy, draft, false);
    schemas.set(validator, copy);
    // A trial run catches whatever the static checks missed (it throws rather than reporting).
    validator.validate({});
    return { ok: true, validator };
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : "unknown error";
    return { ok: false, details: [{ path: root, message: `is not a usable JSON Schema: ${reason}` }] };
  }
}

// Output units that only summarise the failures of their subschemas, which are reported themselves.
const SUMMARIES = new Set([
  "properties",
  "patternProperties",
  "additionalProperties",
  "unevaluatedProperties",
  "items",
  "prefixItems",
  "additionalItems",
  "unevaluatedItems",
  "$ref",
  "$recursiveRef",
  "allOf",
  "dependentSchemas",
]);

/** `#/a~1b%20c/0` → the segments `["a/b c", 0]`, numbered where the instance holds an array. */
function instanceSegments(location: string, instance: unknown): (string | number)[] {
  const segments: (string | number)[] = [];
  let current = instance;
  for (const raw of location.replace(/^#\/?/, "").split("/")) {
    if (raw === "") continue;
    let key: string;
    try {
      key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    } catch {
      key = raw;
    }
    if (Array.isArray(current) && /^\d+$/.test(key)) {
      segments.push(Number(key));
      current = current[Number(key)];
    } else {
      segments.push(key);
      current = isPlainObject(current) ? current[key] : undefined;
    }
  }
  return segments;
}

const MAX_DETAILS = 20;

/** The schema's value at an output unit's `keywordLocation` (`#/properties/message/pattern`); undefined across a $ref. */
function keywordValue(schema: unknown, location: string): unknown {
  let node = schema;
  for (const raw of location.replace(/^#\/?/, "").split("/")) {
    if (raw === "") continue;
    let key: string;
    try {
      key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    } catch {
      return undefined;
    }
    if (Array.isArray(node) && /^\d+$/.test(key)) node = node[Number(key)];
    else if (isPlainObject(node) && Object.hasOwn(node, key)) node = node[key];
    else return undefined;
  }
  return node;
}

const A_TYPE: Record<string, string> = {
  string: "a string",
  number: "a number",
  integer: "a whole number",
  boolean: "true or false",
  object: "an object",
  array: "an array",
  null: "null",
};

/**
 * A failure as a person would say it of the field (issue 13): "must match ^[a-z]+$", "is required" (at the missing
 * property's own path), "must be a string". The schema is the operator's, so quoting its pattern tells the proposer
 * what is accepted; the value that failed is never quoted. Anything else keeps the validator's own words.
 */
function inWords(unit: { keyword: string; error: string }, value: unknown): { under: string[]; message: string } {
  const said = (message: string) => ({ under: [], message });
  switch (unit.keyword) {
    case "false":
      // A `false` subschema (additionalProperties: false) says only "False boolean schema."
      return said("is not allowed here");
    case "pattern":
      return typeof value === "string" ? said(`must match ${value}`) : said(unit.error);
    case "required": {
      const missing = /required property "(.*)"\.$/.exec(unit.error)?.[1];
      return missing === undefined ? said(unit.error) : { under: [missing], message: "is required" };
    }
    case "type": {
      const types = (Array.isArray(value) ? value : [value]).filter((t): t is string => typeof t === "string");
      return types.length > 0 ? said(`must be ${types.map((t) => A_TYPE[t] ?? t).join(" or ")}`) : said(unit.error);
    }
    case "minLength":
    case "maxLength":
      return typeof value === "number"
        ? said(`must be ${unit.keyword === "minLength" ? "at least" : "at most"} ${value} character(s)`)
        : said(unit.error);
    case "minimum":
    case "maximum":
      return typeof value === "number"
        ? said(`must be ${unit.keyword === "minimum" ? "at least" : "at most"} ${value}`)
        : said(unit.error);
    case "enum":
      return Array.isArray(value)
        ? said(`must be one of ${value.map((v) => JSON.stringify(v)).join(", ")}`)
        : said(unit.error);
    case "const":
      return said(`must be ${JSON.stringify(value)}`);
    default:
      return said(unit.error);
  }
}

/** Validation failures of `instance` as details under `root` (`action.params.deployment: …`). */
export function schemaErrors(validator: Validator, instance: unknown, root: string): ErrorDetail[] {
  let result: ReturnType<Validator["validate"]>;
  try {
    result = validator.validate(instance);
  } catch {
    // A recursive schema walking absurdly deep params can exhaust the stack: bad input, so a 422, never a 500.
    return [{ path: root, message: "could not be checked against params_schema (nested too deeply?)" }];
  }
  if (result.valid) return [];
  const leaves = result.errors.filter((unit) => !SUMMARIES.has(unit.keyword));
  const units = leaves.length > 0 ? leaves : result.errors;
  const seen = new Set<string>();
  const details: ErrorDetail[] = [];
  for (const unit of units) {
    const said = inWords(unit, keywordValue(schemas.get(validator), unit.keywordLocation));
    const path = formatPath(root, [...instanceSegments(unit.instanceLocation, instance), ...said.under]);
    const message = said.message;
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    details.push({ path, message });
    if (details.length === MAX_DETAILS) break;
  }
  return details;
}
