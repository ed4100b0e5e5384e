import { describe, expect, it, vi } from "vitest";

import type { HubEvent } from "@/api/types";
import { EventBuffer } from "@/pages/audit/eventBuffer";
import { aggregateLink, compactLocalTime, countText, positionAfter, resourceLinks, summarize, versionLink, versionOf } from "@/pages/audit/events";
import { readLog } from "@/pages/audit/readLog";

function event(position: number, type: string, aggregate: string, data: Record<string, unknown> = {}): HubEvent {
  return {
    position: String(position),
    time: "2026-12-01T12:00:00.123456Z",
    aggregateType: aggregate.startsWith("model/") ? "Model" : "Dataset",
    aggregate,
    aggregateId: "00000000-0000-0000-0000-000000000000",
    aggregateVersion: "1",
    type,
    data,
    metadata: { principal: "alice", requestId: "req-1", traceId: "0af7651916cd43dd8448eb211c80319c" },
  };
}

describe("resource links", () => {
  it("links models and datasets to their pages", () => {
    expect(aggregateLink(event(1, "ModelRegistered", "model/demo"))).toEqual({ label: "model/demo", href: "/models/demo" });
    expect(aggregateLink(event(2, "DatasetRegistered", "dataset/chat"))).toEqual({ label: "dataset/chat", href: "/datasets/chat" });
    expect(aggregateLink(event(3, "X", "job/1"))).toBeUndefined();
    expect(aggregateLink({ position: "4" })).toBeUndefined();
  });

  it("links version events to the version, whether it arrives as 2 or 2.0 or \"2\"", () => {
    const created = event(5, "ModelVersionCreated", "model/demo", { version: 2 });
    expect(versionLink(created)).toEqual({ label: "v2", href: "/models/demo/versions/2" });
    expect(resourceLinks(event(6, "AliasMoved", "model/demo", { alias: "prod", version: 3.0 }))).toEqual([
      { label: "model/demo", href: "/models/demo" },
      { label: "v3", href: "/models/demo/versions/3" },
    ]);
    expect(versionOf("7")).toBe(7);
    expect(versionOf(0)).toBeUndefined();
    expect(versionOf(1.5)).toBeUndefined();
    expect(versionLink(event(7, "ModelRegistered", "model/demo", { base_model: "x" }))).toBeUndefined();
    expect(versionLink(event(8, "DatasetRegistered", "dataset/chat", { version: 1 }))).toBeUndefined();
  });

  it("escapes names in links", () => {
    expect(aggregateLink(event(9, "ModelRegistered", "model/a b"))?.href).toBe("/models/a%20b");
  });
});

describe("summaries", () => {
  it("says what each event type did in one line", () => {
    expect(summarize(event(1, "ModelRegistered", "model/demo", { base_model: "SmolLM2", tags: { team: "nlp" }, description: "hi" }))).toBe(
      "base SmolLM2 · tags team=nlp · “hi”",
    );
    expect(summarize(event(2, "AliasMoved", "model/demo", { alias: "prod", version: 2, previous_version: 1 }))).toBe("prod → v2 (was v1)");
    expect(summarize(event(3, "AliasMoved", "model/demo", { alias: "prod", version: 1, previous_version: 0 }))).toBe("prod → v1 (new)");
    expect(summarize(event(4, "ModelUpdated", "model/demo", { changes: { description: "new\ntext", tags: { a: "b" } } }))).toBe(
      "description → new text · tags → a=b",
    );
    expect(
      summarize(
        event(5, "ModelVersionCreated", "model/demo", {
          version: 3,
          kind: "ADAPTER",
          files: [{}, {}],
          lineage: { parent_version: "demo/versions/1", dataset: "chat" },
        }),
      ),
    ).toBe("v3 · adapter · from demo/versions/1 · dataset chat · 2 files");
    expect(
      summarize(
        event(6, "DatasetRegistered", "dataset/chat", { format: "CHAT", record_count: 1234, size_bytes: 2048, sha256: "abcdef0123456789" }),
      ),
    ).toBe("chat · 1,234 records · 2 KiB · sha256 abcdef012345");
    expect(summarize(event(7, "SomethingNew", "model/demo", { a: 1, b: "", c: "x" }))).toBe("a=1 · c=x");
  });

  it("shortens long text", () => {
    const line = summarize(event(1, "ModelRegistered", "model/demo", { description: "x".repeat(200) }));
    expect(line.length).toBeLessThan(60);
    expect(line.endsWith("…”")).toBe(true);
  });

  it("writes local times compactly", () => {
    expect(compactLocalTime(new Date(2026, 0, 2, 3, 4, 5))).toBe("2026-01-02 03:04:05");
  });

  it("counts events in words", () => {
    expect(countText(0)).toBe("0 events");
    expect(countText(1)).toBe("1 event");
    expect(countText(12345)).toBe("12,345 events");
  });
});

describe("EventBuffer", () => {
  it("appends in batches, drops repeats, and tells listeners once per flush", () => {
    vi.useFakeTimers();
    try {
      const buffer = new EventBuffer(100);
      const listener = vi.fn();
      buffer.subscribe(listener);
      for (let i = 1; i <= 1000; i++) buffer.push(event(i, "AliasMoved", "model/demo"));
      buffer.push(event(999, "AliasMoved", "model/demo")); // a resumed stream's repeat
      expect(buffer.length).toBe(0);
      expect(buffer.lastPosition).toBe("1000");
      vi.advanceTimersByTime(100);
      expect(buffer.length).toBe(1000);
      expect(listener).toHaveBeenCalledTimes(1);
      const snapshot = buffer.getSnapshot();
      buffer.push(event(1001, "AliasMoved", "model/demo"));
      buffer.flush();
      expect(buffer.events.map((e) => e.position).slice(-2)).toEqual(["1000", "1001"]);
      expect(buffer.getSnapshot()).not.toBe(snapshot);
      buffer.reset();
      expect(buffer.length).toBe(0);
      expect(buffer.lastPosition).toBe("0");
      vi.advanceTimersByTime(1000);
      expect(buffer.length).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("compares positions as int64 strings", () => {
    expect(positionAfter("10", "9")).toBe(true);
    expect(positionAfter("9007199254740993", "9007199254740992")).toBe(true);
    expect(positionAfter("9", "10")).toBe(false);
    expect(positionAfter(undefined, "0")).toBe(false);
  });
});

describe("readLog", () => {
  it("reads page after page, each after the last position, until a short page", async () => {
    const total = 25;
    const urls: string[] = [];
    const fetchImpl = (async (input: RequestInfo | URL) => {
      const url = new URL(String(input), "http://hub");
      urls.push(`${url.pathname}?${url.searchParams.toString()}`);
      const after = Number(url.searchParams.get("afterPosition"));
      const limit = Number(url.searchParams.get("limit"));
      const lines = [];
      for (let p = after + 1; p <= Math.min(total, after + limit); p++) {
        lines.push(JSON.stringify({ result: { event: event(p, "AliasMoved", "model/demo") } }));
      }
      return new Response(lines.map((l) => `${l}\n`).join(""), { status: 200 });
    }) as typeof fetch;
    const seen: string[] = [];
    const last = await readLog({
      query: { principal: "alice", eventTypes: ["AliasMoved"] },
      pageSize: 10,
      fetchImpl,
      onEvent: (e) => seen.push(e.position!),
    });
    expect(last).toBe("25");
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => String(i + 1)));
    expect(urls).toEqual([
      "/v1/events?principal=alice&eventTypes=AliasMoved&afterPosition=0&limit=10",
      "/v1/events?principal=alice&eventTypes=AliasMoved&afterPosition=10&limit=10",
      "/v1/events?principal=alice&eventTypes=AliasMoved&afterPosition=20&limit=10",
    ]);
  });
});
