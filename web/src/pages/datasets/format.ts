/** Display forms of dataset fields (int64s arrive as strings, enums as their names). */
import type { Dataset } from "@/api/types";

/** DATASET_FORMAT_CHAT → "chat"; the unspecified format is "unknown". */
export function formatName(format: Dataset["format"] | undefined): string {
  if (!format || format === "DATASET_FORMAT_UNSPECIFIED") return "unknown";
  return format.replace("DATASET_FORMAT_", "").toLowerCase();
}
