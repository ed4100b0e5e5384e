import { describe, expect, it } from "vitest";

import type { HubEvent } from "@/api/types";
import { aggregateName, describeEvent, eventSentence, relativeTime } from "@/components/events/describe";

function event(type: string, aggregate: string, data: Record<string, unknown> = {}, principal = "alice"): HubEvent {
  return {
    position: "7",
    time: "2026-01-01T00:00:00Z",
    aggregateType: aggregate.startsWith("model/") ? "Model" : "Dataset",
    aggregate,
    type,
    data,
    metadata: { principal },
  };
}

describe("describeEvent", () => {
  it("names who created a model and links to it", () => {
    const e = event("ModelRegistered", "model/demo", { name: "demo" });
    expect(eventSentence(e)).toBe("alice created model demo");
    expect(describeEvent(e).href).toBe("/models/demo");
  });

  it("links a version event to the version page", () => {
    const e = event("ModelVersionCreated", "model/demo", { version: 3, lineage: { training_job: "job-1" } }, "bob");
    const d = describeEvent(e);
    expect(d.href).toBe("/models/demo/versions/3");
    expect(eventSentence(e)).toBe("bob created version demo v3 (trained by job job-1)");
  });

  it("links an alias move to the model and says where it came from", () => {
    const e = event("AliasMoved", "model/demo", { alias: "prod", version: 2, previous_version: 1 });
    expect(describeEvent(e).href).toBe("/models/demo");
    expect(describeEvent(e).target).toBe("demo");
    expect(eventSentence(e)).toBe("alice moved alias prod of demo to v2 (from v1)");
    const first = event("AliasMoved", "model/demo", { alias: "prod", version: 1, previous_version: 0 });
    expect(describeEvent(first).detail).toBeUndefined();
  });

  it("lists the fields an update changed", () => {
    const e = event("ModelUpdated", "model/demo", { changes: { description: "x", base_model: "y" } });
    expect(describeEvent(e).detail).toBe("description, base model");
  });

  it("links a dataset registration to the dataset, escaping the name", () => {
    const e = event("DatasetRegistered", "dataset/chat.v1", {});
    expect(eventSentence(e)).toBe("alice registered dataset chat.v1");
    expect(describeEvent(event("DatasetRegistered", "dataset/a b")).href).toBe("/datasets/a%20b");
  });

  it("describes an unknown event type without failing, and a missing principal", () => {
    const e: HubEvent = { type: "SomethingNew", aggregate: "dataset/chat", aggregateType: "Dataset" };
    const d = describeEvent(e);
    expect(d.actor).toBe("someone");
    expect(d.href).toBe("/datasets/chat");
    expect(d.action).toContain("SomethingNew");
    expect(aggregateName({ aggregate: "model/x" })).toBe("x");
  });
});

describe("relativeTime", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  it("counts back from now", () => {
    expect(relativeTime("2026-01-01T11:59:58Z", now)).toBe("just now");
    expect(relativeTime("2026-01-01T11:59:30Z", now)).toBe("30 s ago");
    expect(relativeTime("2026-01-01T11:55:00Z", now)).toBe("5 min ago");
    expect(relativeTime("2026-01-01T09:00:00Z", now)).toBe("3 h ago");
    expect(relativeTime("2025-12-29T12:00:00Z", now)).toBe("3 d ago");
    expect(relativeTime(undefined, now)).toBe("");
  });
});
