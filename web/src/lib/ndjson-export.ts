/** Saving API objects as an NDJSON file from the browser (one JSON object per line). */
import { downloadText } from "@/lib/download";

/** One JSON text per line, each line ending with a newline; "" for no items. */
export function toNdjson(items: readonly unknown[]): string {
  let text = "";
  for (const item of items) text += `${JSON.stringify(item)}\n`;
  return text;
}

/** `<prefix>-2026-12-01T23-39-16Z.ndjson`: a UTC timestamp safe in every file system. */
export function ndjsonFilename(prefix: string, when: Date = new Date()): string {
  const stamp = when.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/:/g, "-");
  return `${prefix}-${stamp}.ndjson`;
}

/** Download the items as an NDJSON file. */
export function downloadNdjson(items: readonly unknown[], filename: string): void {
  downloadText(toNdjson(items), filename, "application/x-ndjson");
}
