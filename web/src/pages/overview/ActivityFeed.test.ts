import { describe, expect, it } from "vitest";

import type { HubEvent } from "@/api/types";
import { addEvent } from "@/pages/overview/ActivityFeed";

const e = (position: string): HubEvent => ({ position, type: "ModelRegistered", aggregate: `model/m${position}` });

describe("addEvent", () => {
  it("keeps the newest first, each position once, at most `keep`", () => {
    let events: HubEvent[] = [];
    for (const p of ["1", "3", "2", "3", "10"]) events = addEvent(events, e(p));
    expect(events.map((x) => x.position)).toEqual(["10", "3", "2", "1"]);
    expect(addEvent(events, e("11"), 2).map((x) => x.position)).toEqual(["11", "10"]);
    expect(addEvent(events, { type: "X" })).toBe(events);
  });
});
