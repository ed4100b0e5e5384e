/**
 * Pure logic behind the Models pages: the list's URL state, key=value rows for
 * tags and metrics, version kinds, and the merged alias timeline. Kept free of
 * React so it is tested on its own.
 */
import type { AliasMove, Model, ModelVersion } from "@/api/types";

/** The orders ListModels accepts (its `orderBy`). */
export const MODEL_ORDERS = ["name", "name desc", "create_time", "create_time desc", "update_time", "update_time desc"] as const;
export type ModelOrder = (typeof MODEL_ORDERS)[number];

export interface ModelListState {
  query: string;
  baseModel: string;
  /** Each "key" or "key=value". */
  tags: string[];
  orderBy: ModelOrder;
  /** Page tokens of the pages before the current one, oldest first ("" for the first page). */
  tokens: string[];
  /** The current page's token ("" for the first page). */
  page: string;
}

const SEPARATOR = "~";

/** Read the list's state from the URL's search params (unknown orders fall back to name). */
export function readListState(params: URLSearchParams): ModelListState {
  const orderBy = params.get("order") ?? "name";
  const stack = params.get("prev");
  return {
    query: params.get("q") ?? "",
    baseModel: params.get("base") ?? "",
    tags: params.getAll("tag").filter((t) => t.trim() !== ""),
    orderBy: (MODEL_ORDERS as readonly string[]).includes(orderBy) ? (orderBy as ModelOrder) : "name",
    tokens: stack === null ? [] : stack.split(SEPARATOR),
    page: params.get("page") ?? "",
  };
}

/** Write the list's state as search params, leaving defaults out so URLs stay short. */
export function writeListState(state: ModelListState): URLSearchParams {
  const params = new URLSearchParams();
  if (state.query) params.set("q", state.query);
  if (state.baseModel) params.set("base", state.baseModel);
  for (const tag of state.tags) params.append("tag", tag);
  if (state.orderBy !== "name") params.set("order", state.orderBy);
  if (state.page) {
    params.set("page", state.page);
    params.set("prev", state.tokens.join(SEPARATOR));
  }
  return params;
}

/** A filter or order change starts again from the first page. */
export function withFilters(state: ModelListState, change: Partial<Omit<ModelListState, "tokens" | "page">>): ModelListState {
  return { ...state, ...change, tokens: [], page: "" };
}

export function nextPage(state: ModelListState, token: string): ModelListState {
  return { ...state, tokens: [...state.tokens, state.page], page: token };
}

export function previousPage(state: ModelListState): ModelListState {
  if (state.tokens.length === 0) return { ...state, page: "" };
  const tokens = state.tokens.slice(0, -1);
  return { ...state, tokens, page: state.tokens[state.tokens.length - 1] ?? "" };
}

/** Which way a column is sorted now, if it is the sort column. */
export function sortDirection(orderBy: ModelOrder, field: "name" | "create_time" | "update_time"): "asc" | "desc" | undefined {
  if (orderBy === field) return "asc";
  if (orderBy === `${field} desc`) return "desc";
  return undefined;
}

/** Clicking a column header: ascending first, then toggling. */
export function toggleSort(orderBy: ModelOrder, field: "name" | "create_time" | "update_time"): ModelOrder {
  return (sortDirection(orderBy, field) === "asc" ? `${field} desc` : field) as ModelOrder;
}

export interface KeyValueRow {
  key: string;
  value: string;
}

/** Rows with an empty key and value are ignored; a later row with the same key wins. */
export function rowsToMap(rows: KeyValueRow[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const { key, value } of rows) {
    if (key.trim() === "" && value.trim() === "") continue;
    map[key.trim()] = value;
  }
  return map;
}

export function mapToRows(map: Record<string, string> | undefined): KeyValueRow[] {
  return Object.entries(map ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => ({ key, value }));
}

/** Metrics rows as numbers, or per-row errors for values that are not finite numbers. */
export function rowsToMetrics(rows: KeyValueRow[]): { metrics: Record<string, number>; errors: Record<number, string> } {
  const metrics: Record<string, number> = {};
  const errors: Record<number, string> = {};
  rows.forEach(({ key, value }, index) => {
    if (key.trim() === "" && value.trim() === "") return;
    if (key.trim() === "") {
      errors[index] = "Give the metric a name.";
      return;
    }
    const number = value.trim() === "" ? Number.NaN : Number(value);
    if (!Number.isFinite(number)) {
      errors[index] = `"${value}" is not a number.`;
      return;
    }
    metrics[key.trim()] = number;
  });
  return { metrics, errors };
}

/**
 * "full", or "adapter on base N" (baseVersion is `name/versions/N`; a base in
 * another model keeps its model's name: "adapter on base other/versions/3").
 */
export function kindLabel(version: Pick<ModelVersion, "kind" | "baseVersion" | "model">): string {
  if (version.kind === "MODEL_VERSION_KIND_ADAPTER") {
    const base = baseVersionLabel(version.baseVersion, version.model);
    return base ? `adapter on base ${base}` : "adapter";
  }
  if (version.kind === "MODEL_VERSION_KIND_FULL") return "full";
  return "unknown";
}

/** The base's number when it is a version of `model`, else the whole reference. */
export function baseVersionLabel(reference: string | undefined, model: string | undefined): string | undefined {
  if (!reference) return undefined;
  const match = /^(.*)\/versions\/(\d+)$/.exec(reference);
  if (!match) return reference;
  return !model || match[1] === model ? match[2] : reference;
}

/** The first few metrics, sorted by name, formatted compactly. */
export function compactMetrics(metrics: Record<string, number> | undefined, limit = 3): { shown: string[]; more: number } {
  const entries = Object.entries(metrics ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return {
    shown: entries.slice(0, limit).map(([k, v]) => `${k} ${formatNumber(v)}`),
    more: Math.max(0, entries.length - limit),
  };
}

export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 0.001 || abs >= 1e6)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

export interface TimelineEntry extends AliasMove {
  alias: string;
}

/** Every alias's moves in one list, newest first (by event position, then time). */
export function mergeTimeline(histories: Record<string, AliasMove[] | undefined>): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  for (const [alias, moves] of Object.entries(histories)) {
    for (const move of moves ?? []) entries.push({ ...move, alias });
  }
  return entries.sort((a, b) => {
    const pa = BigInt(a.position ?? "0");
    const pb = BigInt(b.position ?? "0");
    if (pa !== pb) return pa > pb ? -1 : 1;
    return (b.moveTime ?? "").localeCompare(a.moveTime ?? "");
  });
}

/** Where a roll back goes: the version before the alias's latest move, if there was one. */
export function rollbackTarget(moves: AliasMove[] | undefined): string | undefined {
  if (!moves || moves.length === 0) return undefined;
  const latest = moves.reduce((a, b) => (BigInt(b.position ?? "0") > BigInt(a.position ?? "0") ? b : a));
  const previous = latest.previousVersion;
  return previous && previous !== "0" ? previous : undefined;
}

/** A datetime-local value ("2026-12-01T10:30" or with seconds), read as local time, in RFC 3339 UTC. */
export function localInputToRfc3339(value: string): string | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** An RFC 3339 time as a datetime-local value (local time, to the second). */
export function rfc3339ToLocalInput(value: string): string {
  const date = new Date(value);
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** "v2", or "not set" for an absent or zero version. */
export function versionLabel(version: string | undefined): string {
  return version && version !== "0" ? `v${version}` : "not set";
}

/*
 * GetModel reads the model itself (always current), while version lists and alias histories
 * come from the registry's read model, which a projection fills a moment after each event.
 * These say whether such a read is still behind the model, so the page reads it again.
 */

/** The versions read lacks the model's latest version, or an alias is not yet on its version. */
export function versionsBehind(model: Pick<Model, "latestVersion" | "aliases"> | undefined, versions: ModelVersion[] | undefined): boolean {
  if (!model || !versions) return false;
  const newest = versions.reduce((max, v) => Math.max(max, Number(v.version ?? 0)), 0);
  if (newest < Number(model.latestVersion ?? 0)) return true;
  return Object.entries(model.aliases ?? {}).some(([alias, version]) => {
    const row = versions.find((v) => v.version === version);
    return row !== undefined && !(row.aliases ?? []).includes(alias);
  });
}

/** The alias history read does not end at the version the alias points at now. */
export function historyBehind(current: string | undefined, moves: AliasMove[] | undefined): boolean {
  if (!current || !moves) return false;
  const latest = moves.reduce<AliasMove | undefined>(
    (a, b) => (!a || BigInt(b.position ?? "0") > BigInt(a.position ?? "0") ? b : a),
    undefined,
  );
  return latest?.version !== current;
}
