/**
 * How a form shows the API's answer: which field each violation belongs to (shown
 * beside it), what is left for the form itself, and the aria wiring that ties a
 * control to its hint and its violation. Every dialog uses these, so a field looks
 * and reads the same everywhere.
 */
import { errorMessage } from "@/api/client";
import { ApiError } from "@/api/errors";

/** ALREADY_EXISTS: the API names no field for a taken name. */
const ALREADY_EXISTS = 6;

export interface SplitError {
  /** Violations by the form's field name (the first of each field). */
  fields: Record<string, string>;
  /** The message for the form as a whole: an error that names no field on the form. */
  form?: string;
}

export interface SplitOptions {
  /** The field a taken name (ALREADY_EXISTS, which names no field) belongs beside, e.g. "name". */
  alreadyExists?: string;
}

const camelCase = (field: string) => field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Split an API failure into field violations (shown beside their fields) and a
 * form-level message for the rest. Proto names match the form's camelCase names; a
 * violation of a map entry or nested field (tags[team], config.rank) matches the
 * form field it lies under when the form has no field of its own for it. Fields not
 * on the form leave the API's message for the form.
 */
export function splitError(error: unknown, formFields: readonly string[], options: SplitOptions = {}): SplitError {
  if (!error) return { fields: {} };
  if (!(error instanceof ApiError)) return { fields: {}, form: errorMessage(error) };
  if (options.alreadyExists && error.code === ALREADY_EXISTS) return { fields: { [options.alreadyExists]: error.message }, form: undefined };
  const byField = error.violationsByField();
  const fields: Record<string, string> = {};
  let unplaced = false;
  for (const violation of error.fieldViolations) {
    const camel = camelCase(violation.field);
    const hit = formFields.find((f) => f === violation.field || f === camel || camel.startsWith(`${f}.`) || camel.startsWith(`${f}[`));
    if (hit) fields[hit] = byField[violation.field] ?? violation.description;
    else unplaced = true;
  }
  const placed = Object.keys(fields).length > 0;
  return { fields, form: !placed || unplaced ? error.message : undefined };
}

/** The ids a field's hint and violation carry: `${id}-hint`, `${id}-error`. */
export const hintId = (id: string) => `${id}-hint`;
export const errorId = (id: string) => `${id}-error`;

/**
 * aria props for a control whose hint (when it has one) and violation (when there is
 * one) are shown under it: invalid only with a violation, described by the hint, then
 * the violation.
 */
export function controlProps(id: string, error: string | undefined, hasHint = false) {
  const describedBy = [hasHint ? hintId(id) : undefined, error ? errorId(id) : undefined].filter(Boolean).join(" ");
  return {
    id,
    ...(error ? { "aria-invalid": true as const } : {}),
    ...(describedBy ? { "aria-describedby": describedBy } : {}),
  };
}
