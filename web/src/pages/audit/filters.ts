/**
 * The audit page's filters: kept in the URL (so a filtered view can be shared
 * and survives a reload) and turned into ReadEvents' query parameters.
 */
import type { ReadEventsQuery } from "@/api/types";

/** The registry's event types (registry_svc/domain.py); the API refuses others. */
export const KNOWN_EVENT_TYPES = [
  "ModelRegistered",
  "ModelUpdated",
  "ModelVersionCreated",
  "AliasMoved",
  "DatasetRegistered",
] as const;

export interface AuditFilters {
  /** `model/<name>` or `dataset/<name>`; empty for every aggregate. */
  aggregate: string;
  /** Event types to keep; empty for every type. */
  eventTypes: string[];
  principal: string;
  /** `datetime-local` values (local time, no zone); empty for an open end. */
  from: string;
  to: string;
}

export const EMPTY_FILTERS: AuditFilters = { aggregate: "", eventTypes: [], principal: "", from: "", to: "" };

/** Split free text ("AliasMoved, ModelUpdated") into event types, without blanks or repeats. */
export function splitTypes(text: string): string[] {
  return unique(text.split(/[\s,]+/).filter(Boolean));
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

export function filtersFromParams(params: URLSearchParams): AuditFilters {
  return {
    aggregate: (params.get("aggregate") ?? "").trim(),
    eventTypes: unique(params.getAll("type").flatMap(splitTypes)),
    principal: (params.get("principal") ?? "").trim(),
    from: params.get("from") ?? "",
    to: params.get("to") ?? "",
  };
}

/** The URL search params of some filters: only the ones set, in a stable order. */
export function filtersToParams(filters: AuditFilters): URLSearchParams {
  const params = new URLSearchParams();
  if (filters.aggregate.trim()) params.set("aggregate", filters.aggregate.trim());
  for (const type of unique(filters.eventTypes)) params.append("type", type);
  if (filters.principal.trim()) params.set("principal", filters.principal.trim());
  if (filters.from) params.set("from", filters.from);
  if (filters.to) params.set("to", filters.to);
  return params;
}

/** A `datetime-local` value (read as local time) as RFC 3339 in UTC; undefined when empty or unreadable. */
export function localToRfc3339(value: string): string | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** ReadEvents' query for the filters (without afterPosition, follow and limit). */
export function filtersToQuery(filters: AuditFilters): ReadEventsQuery {
  const query: ReadEventsQuery = {};
  if (filters.aggregate.trim()) query.aggregate = filters.aggregate.trim();
  if (filters.eventTypes.length) query.eventTypes = unique(filters.eventTypes);
  if (filters.principal.trim()) query.principal = filters.principal.trim();
  const startTime = localToRfc3339(filters.from);
  const endTime = localToRfc3339(filters.to);
  if (startTime) query.startTime = startTime;
  if (endTime) query.endTime = endTime;
  return query;
}

/** A string that changes exactly when the filters do (restarts the read). */
export function filtersKey(filters: AuditFilters): string {
  return filtersToParams(filters).toString();
}

export function hasFilters(filters: AuditFilters): boolean {
  return filtersKey(filters) !== "";
}
