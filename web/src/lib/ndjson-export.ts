/** Saving API objects as an NDJSON file from the browser (one JSON object per line). */

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

/** Download the items as an NDJSON file through a Blob and a temporary object URL. */
export function downloadNdjson(items: readonly unknown[], filename: string): void {
  const blob = new Blob([toNdjson(items)], { type: "application/x-ndjson" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.style.display = "none";
  document.body.append(link);
  link.click();
  link.remove();
  // Revoke after the click has been handled, so the download can start.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
