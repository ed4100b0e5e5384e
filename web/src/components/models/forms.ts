/** Small helpers the Models forms share. */
import { ApiError } from "@/api/errors";
import { errorMessage } from "@/api/client";

/** aria props for an input whose violation may be shown under it (the FieldError's id is `${id}-error`). */
export function invalidProps(id: string, message: string | undefined) {
  return message ? { "aria-invalid": true as const, "aria-describedby": `${id}-error` } : {};
}

/**
 * Split an API failure into field violations (shown beside their fields) and a
 * form-level message for the rest. Fields not on the form go to the form message.
 */
export function splitError(error: unknown, formFields: readonly string[]): { fields: Record<string, string>; form?: string } {
  if (!error) return { fields: {} };
  if (!(error instanceof ApiError)) return { fields: {}, form: errorMessage(error) };
  const byField = error.violationsByField();
  const fields: Record<string, string> = {};
  let unplaced = false;
  for (const violation of error.fieldViolations) {
    const camel = violation.field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    const hit = formFields.find((f) => f === violation.field || f === camel || camel.startsWith(`${f}.`) || camel.startsWith(`${f}[`));
    if (hit) fields[hit] = byField[violation.field] ?? violation.description;
    else unplaced = true;
  }
  const placed = Object.keys(fields).length > 0;
  return { fields, form: !placed || unplaced ? error.message : undefined };
}

/** ABORTED (409) or FAILED_PRECONDITION (412): the etag sent no longer matches the resource. */
export function isConflict(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  // 9 FAILED_PRECONDITION, 10 ABORTED; 6 ALREADY_EXISTS is also a 409 but not a stale etag.
  return error.code === 9 || error.code === 10 || error.httpStatus === 412 || (error.httpStatus === 409 && error.code !== 6);
}
