/** Side-by-side comparison of two versions' records (parameters, metrics, library versions, files). */
import type { ArtifactFile } from "@/api/types";

export type DiffStatus = "same" | "changed" | "only-a" | "only-b";

export interface DiffRow<T> {
  key: string;
  a: T | undefined;
  b: T | undefined;
  status: DiffStatus;
}

/** A value as one line of text: strings as they are, everything else as JSON with sorted keys. */
export function formatValue(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return stableJson(value);
}

function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : v,
  );
}

function same(a: unknown, b: unknown): boolean {
  return a === b || stableJson(a) === stableJson(b);
}

/** The union of both records' keys, sorted, each with both values and whether they differ. */
export function diffRecords<T>(a: Record<string, T> | undefined, b: Record<string, T> | undefined): DiffRow<T>[] {
  const left = a ?? {};
  const right = b ?? {};
  const keys = [...new Set([...Object.keys(left), ...Object.keys(right)])].sort();
  return keys.map((key) => {
    const inA = Object.hasOwn(left, key);
    const inB = Object.hasOwn(right, key);
    const status: DiffStatus = !inA ? "only-b" : !inB ? "only-a" : same(left[key], right[key]) ? "same" : "changed";
    return { key, a: inA ? left[key] : undefined, b: inB ? right[key] : undefined, status };
  });
}

export interface MetricRow extends DiffRow<number> {
  /** b − a, when both versions have the metric. */
  delta: number | undefined;
}

export function diffMetrics(a: Record<string, number> | undefined, b: Record<string, number> | undefined): MetricRow[] {
  return diffRecords(a, b).map((row) => ({
    ...row,
    delta: row.a !== undefined && row.b !== undefined ? row.b - row.a : undefined,
  }));
}

/** Files matched by path and compared by sha256. */
export function diffFiles(a: ArtifactFile[] | undefined, b: ArtifactFile[] | undefined): DiffRow<ArtifactFile>[] {
  const byPath = (files: ArtifactFile[] | undefined) => Object.fromEntries((files ?? []).map((f) => [f.path ?? "", f]));
  const left = byPath(a);
  const right = byPath(b);
  return diffRecords(left, right).map((row) => ({
    ...row,
    status: row.status === "changed" || row.status === "same" ? (row.a?.sha256 === row.b?.sha256 ? "same" : "changed") : row.status,
  }));
}

/** A signed number with a sign always shown (+0.25, −0.1) and no float noise. */
export function formatDelta(delta: number): string {
  const rounded = Number(delta.toPrecision(6));
  if (rounded === 0) return "±0";
  return rounded > 0 ? `+${rounded}` : `−${Math.abs(rounded)}`;
}

export const statusText: Record<DiffStatus, string> = {
  same: "same",
  changed: "differs",
  "only-a": "only in A",
  "only-b": "only in B",
};
