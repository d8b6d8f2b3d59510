// Field paths and errors in the API server's style, and small typed readers over `unknown` input.
// Guarantees: readers never throw; each problem becomes one FieldError at the exact field path;
// null counts as absent (the API server prunes nulls of non-nullable fields). Knows no SmartNat kind.

import type { FieldError, FieldErrorReason, ParseResult } from './types.js';

export type Raw = Readonly<Record<string, unknown>>;

export function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `spec` + `ports` -> `spec.ports`; `` + `spec` -> `spec`. */
export function child(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** `spec.ports` + 1 -> `spec.ports[1]` (map values print as `child`: `...matchLabels.zone`). */
export function item(path: string, index: number | string): string {
  return `${path}[${index}]`;
}

/** A value as the API server quotes it in messages: strings in JSON quotes, numbers bare. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return 'null';
  return Array.isArray(value) ? '"array"' : '"object"';
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Collects errors for one parse; `result` turns them into a ParseResult. */
export class FieldErrors {
  private readonly list: FieldError[] = [];

  get errors(): readonly FieldError[] {
    return this.list;
  }

  get count(): number {
    return this.list.length;
  }

  add(field: string, reason: FieldErrorReason, message: string): void {
    this.list.push({ field, reason, message });
  }

  required(field: string): void {
    this.add(field, 'FieldValueRequired', 'Required value');
  }

  invalid(field: string, value: unknown, detail: string): void {
    this.add(field, 'FieldValueInvalid', `Invalid value: ${show(value)}: ${detail}`);
  }

  typeInvalid(field: string, value: unknown, expected: string): void {
    this.add(field, 'FieldValueTypeInvalid', `Invalid value: ${JSON.stringify(typeName(value))}: must be of type ${expected}`);
  }

  notSupported(field: string, value: unknown, supported: readonly string[]): void {
    const list = supported.map((s) => JSON.stringify(s)).join(', ');
    this.add(field, 'FieldValueNotSupported', `Unsupported value: ${show(value)}: supported values: ${list}`);
  }

  duplicate(field: string, value: unknown): void {
    this.add(field, 'FieldValueDuplicate', `Duplicate value: ${show(value)}`);
  }

  tooMany(field: string, actual: number, max: number): void {
    this.add(field, 'FieldValueTooMany', `Too many: ${actual}: must have at most ${max} items`);
  }

  tooLong(field: string, max: number): void {
    this.add(field, 'FieldValueTooLong', `Too long: may not be more than ${max} bytes`);
  }

  /** The recorded errors as a refusal (call after recording at least one). */
  failure<T>(): ParseResult<T> {
    return { ok: false, errors: [...this.list] };
  }

  /** ok with `build()` when nothing was recorded, else the errors (build is not called). */
  result<T>(build: () => T): ParseResult<T> {
    return this.list.length === 0 ? { ok: true, value: build() } : { ok: false, errors: [...this.list] };
  }
}

/** `obj[key]`, with null read as absent. */
export function field(obj: Raw, key: string): unknown {
  const value = obj[key];
  return value === null ? undefined : value;
}

export interface StringRules {
  readonly minLength?: number;
  readonly maxLength?: number;
  /** A pattern and the detail printed when it does not match. */
  readonly pattern?: readonly [RegExp, string];
  readonly enum?: readonly string[];
}

/** A string checked like an OpenAPI string schema; undefined when absent or refused. */
export function readString(errs: FieldErrors, value: unknown, path: string, rules: StringRules = {}): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    errs.typeInvalid(path, value, 'string');
    return undefined;
  }
  const before = errs.count;
  const length = [...value].length;
  if (rules.maxLength !== undefined && length > rules.maxLength) errs.tooLong(path, rules.maxLength);
  if (rules.minLength !== undefined && length < rules.minLength) {
    errs.invalid(path, value, `should be at least ${rules.minLength} chars long`);
  }
  if (rules.pattern !== undefined && !rules.pattern[0].test(value)) errs.invalid(path, value, rules.pattern[1]);
  if (rules.enum !== undefined && !rules.enum.includes(value)) errs.notSupported(path, value, rules.enum);
  return errs.count === before ? value : undefined;
}

export interface IntegerRules {
  readonly minimum?: number;
  readonly maximum?: number;
  readonly multipleOf?: number;
}

/** An integer checked like an OpenAPI integer schema; undefined when absent or refused. */
export function readInteger(errs: FieldErrors, value: unknown, path: string, rules: IntegerRules = {}): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    errs.typeInvalid(path, value, 'integer');
    return undefined;
  }
  const before = errs.count;
  if (rules.minimum !== undefined && value < rules.minimum) {
    errs.invalid(path, value, `should be greater than or equal to ${rules.minimum}`);
  }
  if (rules.maximum !== undefined && value > rules.maximum) {
    errs.invalid(path, value, `should be less than or equal to ${rules.maximum}`);
  }
  if (rules.multipleOf !== undefined && value % rules.multipleOf !== 0) {
    errs.invalid(path, value, `should be a multiple of ${rules.multipleOf}`);
  }
  return errs.count === before ? value : undefined;
}

/** A boolean; undefined when absent or refused. */
export function readBoolean(errs: FieldErrors, value: unknown, path: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    errs.typeInvalid(path, value, 'boolean');
    return undefined;
  }
  return value;
}

export interface ListRules {
  readonly minItems?: number;
  readonly maxItems?: number;
}

/** An array with its length checked; undefined when absent or not an array. Items are unchecked. */
export function readList(errs: FieldErrors, value: unknown, path: string, rules: ListRules = {}): readonly unknown[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) {
    errs.typeInvalid(path, value, 'array');
    return undefined;
  }
  if (rules.maxItems !== undefined && value.length > rules.maxItems) errs.tooMany(path, value.length, rules.maxItems);
  if (rules.minItems !== undefined && value.length < rules.minItems) {
    errs.invalid(path, value.length, `should have at least ${rules.minItems} items`);
  }
  return value as readonly unknown[];
}

/** An object; undefined when absent or not an object. */
export function readObject(errs: FieldErrors, value: unknown, path: string): Raw | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) {
    errs.typeInvalid(path, value, 'object');
    return undefined;
  }
  return value;
}

/** Records a Duplicate error at each string item equal to an earlier one (a list-type set). */
export function checkUnique(errs: FieldErrors, items: readonly unknown[], path: string): void {
  const seen = new Set<string>();
  items.forEach((x, i) => {
    if (typeof x !== 'string') return;
    if (seen.has(x)) errs.duplicate(item(path, i), x);
    seen.add(x);
  });
}
