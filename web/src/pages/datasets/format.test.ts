import { describe, expect, it } from "vitest";

import { formatBytes, formatCount, shortSha } from "@/lib/format";
import { formatName } from "@/pages/datasets/format";

describe("dataset formatting", () => {
  it("sizes in binary units", () => {
    expect(formatBytes(undefined)).toBe("0 B");
    expect(formatBytes("1023")).toBe("1023 B");
    expect(formatBytes("1536")).toBe("1.5 KiB");
    expect(formatBytes(String(5 * 1024 * 1024))).toBe("5 MiB");
    expect(formatBytes(String(300 * 1024 ** 3))).toBe("300 GiB");
  });
  it("counts, formats and hashes", () => {
    expect(formatCount("12345")).toBe("12,345");
    expect(formatCount(undefined)).toBe("0");
    expect(formatName("DATASET_FORMAT_COMPLETIONS")).toBe("completions");
    expect(formatName(undefined)).toBe("unknown");
    expect(shortSha("0123456789abcdef")).toBe("0123456789ab");
  });
});
