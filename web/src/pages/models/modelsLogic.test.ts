import { describe, expect, it } from "vitest";

import {
  compactMetrics,
  formatNumber,
  kindLabel,
  localInputToRfc3339,
  mapToRows,
  mergeTimeline,
  nextPage,
  previousPage,
  readListState,
  rfc3339ToLocalInput,
  rollbackTarget,
  rowsToMap,
  rowsToMetrics,
  toggleSort,
  versionLabel,
  versionsBehind,
  historyBehind,
  withFilters,
  writeListState,
} from "@/pages/models/modelsLogic";

describe("list state in the URL", () => {
  it("round-trips filters, order and the page token stack", () => {
    const state = {
      ...readListState(new URLSearchParams()),
      query: "chat",
      baseModel: "org/base",
      tags: ["team=nlp", "prod"],
      orderBy: "update_time desc" as const,
    };
    const paged = nextPage(nextPage(state, "tok1"), "tok2");
    expect(paged.tokens).toEqual(["", "tok1"]);
    expect(paged.page).toBe("tok2");
    const read = readListState(new URLSearchParams(writeListState(paged).toString()));
    expect(read).toEqual(paged);
    const back = previousPage(read);
    expect(back.page).toBe("tok1");
    expect(back.tokens).toEqual([""]);
    const first = previousPage(back);
    expect(first.page).toBe("");
    expect(writeListState(first).has("page")).toBe(false);
  });

  it("leaves defaults out and rejects unknown orders", () => {
    expect(writeListState(readListState(new URLSearchParams())).toString()).toBe("");
    expect(readListState(new URLSearchParams("order=drop table")).orderBy).toBe("name");
  });

  it("starts from the first page when a filter changes", () => {
    const paged = nextPage(readListState(new URLSearchParams()), "t");
    const filtered = withFilters(paged, { query: "x" });
    expect(filtered.page).toBe("");
    expect(filtered.tokens).toEqual([]);
  });

  it("toggles a column between ascending and descending", () => {
    expect(toggleSort("name", "name")).toBe("name desc");
    expect(toggleSort("name desc", "name")).toBe("name");
    expect(toggleSort("name", "create_time")).toBe("create_time");
  });
});

describe("key=value rows", () => {
  it("maps tags, skipping blank rows", () => {
    expect(rowsToMap([{ key: " team ", value: "nlp" }, { key: "", value: "" }])).toEqual({ team: "nlp" });
    expect(mapToRows({ b: "2", a: "1" })).toEqual([{ key: "a", value: "1" }, { key: "b", value: "2" }]);
  });

  it("parses metrics and names the rows that are not numbers", () => {
    const { metrics, errors } = rowsToMetrics([
      { key: "loss", value: "0.25" },
      { key: "acc", value: "high" },
      { key: "", value: "3" },
      { key: "", value: "" },
    ]);
    expect(metrics).toEqual({ loss: 0.25 });
    expect(Object.keys(errors)).toEqual(["1", "2"]);
    expect(errors[1]).toContain("not a number");
  });
});

describe("versions", () => {
  it("labels kinds, with the base's number for an adapter on this model", () => {
    expect(kindLabel({ kind: "MODEL_VERSION_KIND_FULL" })).toBe("full");
    expect(kindLabel({ kind: "MODEL_VERSION_KIND_ADAPTER", baseVersion: "demo/versions/3", model: "demo" })).toBe("adapter on base 3");
    expect(kindLabel({ kind: "MODEL_VERSION_KIND_ADAPTER", baseVersion: "other/versions/2", model: "demo" })).toBe(
      "adapter on base other/versions/2",
    );
  });

  it("shows a few metrics compactly", () => {
    expect(compactMetrics({ z: 1, a: 0.123456, m: 2.5, b: 1e-5 }, 3)).toEqual({ shown: ["a 0.1235", "b 1.00e-5", "m 2.5"], more: 1 });
    expect(formatNumber(42)).toBe("42");
    expect(versionLabel("0")).toBe("not set");
    expect(versionLabel("2")).toBe("v2");
  });
});

describe("alias timeline", () => {
  const prod = [
    { version: "1", position: "5", moveTime: "2026-01-01T00:00:05Z", principal: "alice" },
    { version: "2", previousVersion: "1", position: "9", moveTime: "2026-01-01T00:00:09Z", principal: "bob" },
  ];
  const staging = [{ version: "2", position: "7", moveTime: "2026-01-01T00:00:07Z" }];

  it("merges every alias's moves, newest first", () => {
    const merged = mergeTimeline({ prod, staging });
    expect(merged.map((m) => `${m.alias}:${m.version}`)).toEqual(["prod:2", "staging:2", "prod:1"]);
  });

  it("compares positions as integers, not strings", () => {
    const merged = mergeTimeline({ a: [{ version: "1", position: "9" }, { version: "2", position: "10" }] });
    expect(merged[0]?.version).toBe("2");
  });

  it("rolls back to the version before the latest move", () => {
    expect(rollbackTarget(prod)).toBe("1");
    expect(rollbackTarget(staging)).toBeUndefined();
    expect(rollbackTarget([])).toBeUndefined();
  });

  it("reads a datetime-local value as local time", () => {
    const iso = "2026-03-04T05:06:07.000Z";
    expect(localInputToRfc3339(rfc3339ToLocalInput(iso))).toBe(iso);
    expect(localInputToRfc3339("")).toBeUndefined();
    expect(localInputToRfc3339("nonsense")).toBeUndefined();
  });
});

describe("reads behind the model", () => {
  const model = { latestVersion: "2", aliases: { prod: "2" } };
  it("notices a missing version or an alias not yet on its version", () => {
    expect(versionsBehind(model, [{ version: "1" }])).toBe(true);
    expect(versionsBehind(model, [{ version: "2" }, { version: "1", aliases: ["prod"] }])).toBe(true);
    expect(versionsBehind(model, [{ version: "2", aliases: ["prod"] }, { version: "1" }])).toBe(false);
    expect(versionsBehind(undefined, [])).toBe(false);
  });

  it("notices a history that does not end where the alias points", () => {
    expect(historyBehind("2", [{ version: "1", position: "3" }])).toBe(true);
    expect(historyBehind("2", [{ version: "1", position: "3" }, { version: "2", position: "10" }])).toBe(false);
    expect(historyBehind("2", [])).toBe(true);
    expect(historyBehind(undefined, [])).toBe(false);
  });
});
