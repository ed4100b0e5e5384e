/** Display forms shared by every page: sizes, counts, checksums and times (int64s arrive as strings). */

/** Bytes as B / KiB / MiB / GiB / TiB with up to one decimal; a missing size (an omitted zero) is "0 B". */
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
  return `${size >= 100 ? Math.round(size) : size.toFixed(1).replace(/\.0$/, "")} ${units[unit]}`;
}

/** "12345" → "12,345". */
export function formatCount(value: string | number | undefined): string {
  const n = Number(value ?? 0);
  return Number.isFinite(n) ? n.toLocaleString("en-US") : String(value);
}

/** First 12 hex digits of a sha256, enough to tell files apart at a glance. */
export function shortSha(sha: string | undefined, length = 12): string {
  return sha ? sha.slice(0, length) : "";
}

/** A time as the browser's local time (the full ISO string belongs in a title). */
export function localTime(iso: string | undefined): string {
  if (!iso) return "";
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
}
