/** The gateway's error body (a google.rpc.Status) as an exception the UI can show. */
import type { Status } from "@/api/types";

export interface FieldViolation {
  field: string;
  description: string;
}

const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

export class ApiError extends Error {
  readonly httpStatus: number;
  readonly code: number;
  readonly details: NonNullable<Status["details"]>;

  constructor(httpStatus: number, status: Status | undefined, fallback = "request failed") {
    super(status?.message || `${fallback} (HTTP ${httpStatus})`);
    this.name = "ApiError";
    this.httpStatus = httpStatus;
    this.code = status?.code ?? 0;
    this.details = status?.details ?? [];
  }

  /** The API's field violations (google.rpc.BadRequest), for showing beside form fields. */
  get fieldViolations(): FieldViolation[] {
    const found: FieldViolation[] = [];
    for (const detail of this.details) {
      const d = detail as Record<string, unknown>;
      if (d["@type"] !== BAD_REQUEST || !Array.isArray(d.fieldViolations)) continue;
      for (const v of d.fieldViolations as Record<string, unknown>[]) {
        found.push({ field: String(v.field ?? ""), description: String(v.description ?? "") });
      }
    }
    return found;
  }

  /** Violations keyed by field, proto names and camelCase both (the API reports proto names). */
  violationsByField(): Record<string, string> {
    const byField: Record<string, string> = {};
    for (const { field, description } of this.fieldViolations) {
      byField[field] = description;
      byField[field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = description;
    }
    return byField;
  }
}

/** ABORTED (409) or FAILED_PRECONDITION (412): the etag sent no longer matches the resource. */
export function isConflict(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  // 9 FAILED_PRECONDITION, 10 ABORTED; 6 ALREADY_EXISTS is also a 409 but not a stale etag.
  return error.code === 9 || error.code === 10 || error.httpStatus === 412 || (error.httpStatus === 409 && error.code !== 6);
}

/** Parse an error response's body; a body that is not a Status still gives a readable error. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let status: Status | undefined;
  try {
    status = (await response.json()) as Status;
  } catch {
    status = undefined;
  }
  return new ApiError(response.status, status, response.statusText || "request failed");
}
