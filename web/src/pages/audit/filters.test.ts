import { describe, expect, it } from "vitest";

import {
  EMPTY_FILTERS,
  filtersFromParams,
  filtersKey,
  filtersToParams,
  filtersToQuery,
  hasFilters,
  localToRfc3339,
  splitTypes,
} from "@/pages/audit/filters";

describe("audit filters", () => {
  it("round-trips through the URL's search params", () => {
    const filters = {
      aggregate: "model/demo",
      eventTypes: ["AliasMoved", "ModelRegistered"],
      principal: "alice",
      from: "2026-12-01T10:00",
      to: "2026-12-02T10:30:15",
    };
    const params = filtersToParams(filters);
    expect(params.toString()).toBe(
      "aggregate=model%2Fdemo&type=AliasMoved&type=ModelRegistered&principal=alice&from=2026-12-01T10%3A00&to=2026-12-02T10%3A30%3A15",
    );
    expect(filtersFromParams(new URLSearchParams(params.toString()))).toEqual(filters);
  });

  it("reads missing params as no filter and writes no empty params", () => {
    expect(filtersFromParams(new URLSearchParams(""))).toEqual(EMPTY_FILTERS);
    expect(filtersToParams(EMPTY_FILTERS).toString()).toBe("");
    expect(filtersToParams({ ...EMPTY_FILTERS, aggregate: "  ", principal: " " }).toString()).toBe("");
    expect(hasFilters(EMPTY_FILTERS)).toBe(false);
    expect(hasFilters({ ...EMPTY_FILTERS, principal: "bob" })).toBe(true);
  });

  it("splits free-text event types and drops repeats", () => {
    expect(splitTypes(" AliasMoved, ModelUpdated  AliasMoved,,")).toEqual(["AliasMoved", "ModelUpdated"]);
    expect(filtersFromParams(new URLSearchParams("type=AliasMoved,ModelUpdated&type=AliasMoved")).eventTypes).toEqual([
      "AliasMoved",
      "ModelUpdated",
    ]);
  });

  it("ignores the follow toggle and other params in the key", () => {
    const a = filtersFromParams(new URLSearchParams("principal=bob&follow=1"));
    const b = filtersFromParams(new URLSearchParams("principal=bob"));
    expect(filtersKey(a)).toBe(filtersKey(b));
    expect(filtersKey(a)).not.toBe(filtersKey(EMPTY_FILTERS));
  });

  it("maps to ReadEvents' query with times in RFC 3339 UTC", () => {
    const from = "2026-12-01T10:00";
    const to = "2026-12-01T11:00:30";
    const query = filtersToQuery({ aggregate: " dataset/chat ", eventTypes: ["DatasetRegistered"], principal: "alice", from, to });
    expect(query).toEqual({
      aggregate: "dataset/chat",
      eventTypes: ["DatasetRegistered"],
      principal: "alice",
      startTime: new Date(from).toISOString(),
      endTime: new Date(to).toISOString(),
    });
    expect(query.startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // The local input is read in local time: the UTC instant differs from the input by the zone offset.
    expect(Date.parse(query.endTime!) - Date.parse(query.startTime!)).toBe(3_630_000);
    expect(filtersToQuery(EMPTY_FILTERS)).toEqual({});
  });

  it("leaves an unreadable time out instead of sending it", () => {
    expect(localToRfc3339("")).toBeUndefined();
    expect(localToRfc3339("not a time")).toBeUndefined();
    expect(filtersToQuery({ ...EMPTY_FILTERS, from: "garbage" })).toEqual({});
  });
});
