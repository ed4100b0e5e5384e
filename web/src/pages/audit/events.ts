/**
 * What the audit table shows of an event: links to the resource it changed and
 * a one-line summary of its data (event data keys are the registry's snake_case
 * attribute names; numbers may arrive as 1 or 1.0).
 */
import type { HubEvent } from "@/api/types";
import { formatBytes } from "@/lib/format";

export interface ResourceLink {
  label: string;
  href: string;
}

type Data = Record<string, unknown>;

function dataOf(event: HubEvent): Data {
  return (event.data ?? {}) as Data;
}

/** `model/demo` → ["model", "demo"]; undefined for anything else. */
export function splitAggregate(aggregate: string | undefined): [kind: string, name: string] | undefined {
  if (!aggregate) return undefined;
  const slash = aggregate.indexOf("/");
  if (slash <= 0 || slash === aggregate.length - 1) return undefined;
  return [aggregate.slice(0, slash), aggregate.slice(slash + 1)];
}

/** A version number from event data (a number, or a numeric string); undefined if absent or not one. */
export function versionOf(value: unknown): number | undefined {
  const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof number === "number" && Number.isInteger(number) && number > 0 ? number : undefined;
}

/** The page of the resource the event changed: the model or dataset. */
export function aggregateLink(event: HubEvent): ResourceLink | undefined {
  const parts = splitAggregate(event.aggregate);
  if (!parts) return undefined;
  const [kind, name] = parts;
  const path = encodeURIComponent(name);
  if (kind === "model") return { label: event.aggregate!, href: `/models/${path}` };
  if (kind === "dataset") return { label: event.aggregate!, href: `/datasets/${path}` };
  return undefined;
}

/** The model version an event is about (a version created, an alias moved to it), if any. */
export function versionLink(event: HubEvent): ResourceLink | undefined {
  const parts = splitAggregate(event.aggregate);
  if (!parts || parts[0] !== "model") return undefined;
  const version = versionOf(dataOf(event).version);
  if (version === undefined) return undefined;
  return { label: `v${version}`, href: `/models/${encodeURIComponent(parts[1])}/versions/${version}` };
}

/** Every resource link of an event: the aggregate first, then the version. */
export function resourceLinks(event: HubEvent): ResourceLink[] {
  return [aggregateLink(event), versionLink(event)].filter((link): link is ResourceLink => link !== undefined);
}

function short(value: unknown, max = 60): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "";
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function tagsText(tags: unknown): string {
  if (!tags || typeof tags !== "object") return "";
  return Object.entries(tags as Data)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(", ");
}

function genericSummary(data: Data): string {
  return Object.entries(data)
    .filter(([, v]) => v !== "" && v !== null && v !== undefined)
    .slice(0, 4)
    .map(([k, v]) => `${k}=${short(v, 30)}`)
    .join(" · ");
}

/** One line saying what the event did, for the table. */
export function summarize(event: HubEvent): string {
  const data = dataOf(event);
  const parts: string[] = [];
  switch (event.type) {
    case "ModelRegistered": {
      if (data.base_model) parts.push(`base ${short(data.base_model)}`);
      const tags = tagsText(data.tags);
      if (tags) parts.push(`tags ${short(tags, 40)}`);
      if (data.description) parts.push(`“${short(data.description, 50)}”`);
      return parts.join(" · ") || "registered";
    }
    case "ModelUpdated": {
      const changes = (data.changes ?? {}) as Data;
      const entries = Object.entries(changes);
      if (entries.length === 0) return "no changes";
      return entries
        .map(([field, value]) => (field === "tags" ? `tags → ${short(tagsText(value) || "none", 40)}` : `${field} → ${short(value, 40)}`))
        .join(" · ");
    }
    case "ModelVersionCreated": {
      const version = versionOf(data.version);
      parts.push(version !== undefined ? `v${version}` : "version");
      if (data.kind) parts.push(String(data.kind).toLowerCase());
      const lineage = (data.lineage ?? {}) as Data;
      if (lineage.parent_version) parts.push(`from ${short(lineage.parent_version, 40)}`);
      if (lineage.dataset) parts.push(`dataset ${short(lineage.dataset, 30)}`);
      if (Array.isArray(data.files)) parts.push(`${data.files.length} file${data.files.length === 1 ? "" : "s"}`);
      if (data.description) parts.push(`“${short(data.description, 40)}”`);
      return parts.join(" · ");
    }
    case "AliasMoved": {
      const version = versionOf(data.version);
      const previous = versionOf(data.previous_version);
      const target = version !== undefined ? `v${version}` : "?";
      return `${String(data.alias ?? "alias")} → ${target}${previous !== undefined ? ` (was v${previous})` : " (new)"}`;
    }
    case "DatasetRegistered": {
      if (data.format) parts.push(String(data.format).toLowerCase());
      const records = Number(data.record_count);
      if (Number.isFinite(records) && data.record_count !== undefined) parts.push(`${records.toLocaleString("en-US")} records`);
      const size = Number(data.size_bytes);
      if (Number.isFinite(size) && data.size_bytes !== undefined) parts.push(formatBytes(size));
      if (typeof data.sha256 === "string") parts.push(`sha256 ${data.sha256.slice(0, 12)}`);
      return parts.join(" · ");
    }
    default:
      return genericSummary(data);
  }
}

/** Positions are int64 strings: compare them exactly. */
export function positionAfter(position: string | undefined, last: string): boolean {
  if (!position) return false;
  try {
    return BigInt(position) > BigInt(last);
  } catch {
    return false;
  }
}

/** "1 event", "12,345 events". */
export function countText(count: number): string {
  return `${count.toLocaleString("en-US")} event${count === 1 ? "" : "s"}`;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** Local time as "2026-12-01 23:39:16": compact, unambiguous, and sorts like the log. */
export function compactLocalTime(date: Date): string {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}
