/** Display forms of dataset fields (int64s arrive as strings, enums as their names). */
import type { Dataset } from "@/api/types";

/** 1536 → "1.5 KiB"; a missing size (an omitted zero) is "0 B". */
export function formatBytes(value: string | number | undefined): string {
  const bytes = Number(value ?? 0);
  if (!Number.isFinite(bytes) || bytes < 1024) return `${Number.isFinite(bytes) ? bytes : 0} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let size = bytes / 1024;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size >= 100 ? Math.round(size) : size.toFixed(1)} ${units[unit]}`;
}

/** "12345" → "12,345". */
export function formatCount(value: string | number | undefined): string {
  const n = Number(value ?? 0);
  return Number.isFinite(n) ? n.toLocaleString("en-US") : String(value);
}

/** DATASET_FORMAT_CHAT → "chat"; the unspecified format is "unknown". */
export function formatName(format: Dataset["format"] | undefined): string {
  if (!format || format === "DATASET_FORMAT_UNSPECIFIED") return "unknown";
  return format.replace("DATASET_FORMAT_", "").toLowerCase();
}

export function shortSha(sha: string | undefined): string {
  return sha ? sha.slice(0, 12) : "";
}

/** A time as the browser's local time; the full ISO string goes in a title. */
export function localTime(iso: string | undefined): string {
  if (!iso) return "";
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
}
