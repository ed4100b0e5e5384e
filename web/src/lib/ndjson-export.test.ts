import { describe, expect, it } from "vitest";

import { ndjsonFilename, toNdjson } from "@/lib/ndjson-export";

describe("NDJSON export", () => {
  it("writes one JSON object per line, each exactly as given", () => {
    const events = [
      { position: "1", type: "ModelRegistered", data: { name: "demo", tags: { team: "nlp" } } },
      { position: "2", type: "AliasMoved", data: { alias: "prod", note: "line\nbreak" } },
    ];
    const text = toNdjson(events);
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.split("\n").slice(0, -1);
    expect(lines).toHaveLength(2);
    expect(lines.map((line) => JSON.parse(line))).toEqual(events);
    expect(toNdjson([])).toBe("");
  });

  it("names the file with a UTC timestamp without colons", () => {
    expect(ndjsonFilename("mlxhub-events", new Date("2026-12-01T23:39:16.789Z"))).toBe("mlxhub-events-2026-12-01T23-39-16Z.ndjson");
  });
});
