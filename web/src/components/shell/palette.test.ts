import { describe, expect, it } from "vitest";

import { jobMatches, parseVersionQuery } from "@/components/shell/palette";

describe("parseVersionQuery", () => {
  it("reads the three ways to name a version", () => {
    expect(parseVersionQuery("demo/versions/3")).toEqual({ name: "demo", reference: "demo/versions/3" });
    expect(parseVersionQuery("demo@prod")).toEqual({ name: "demo", reference: "demo@prod" });
    expect(parseVersionQuery("demo 3")).toEqual({ name: "demo", reference: "demo/versions/3" });
    expect(parseVersionQuery("  Demo v12 ")).toEqual({ name: "demo", reference: "demo/versions/12" });
  });

  it("takes a bare or half-typed name as the model alone", () => {
    expect(parseVersionQuery("qwen2.5-0.5b")).toEqual({ name: "qwen2.5-0.5b" });
    expect(parseVersionQuery("demo/vers")).toEqual({ name: "demo" });
    expect(parseVersionQuery("demo@")).toEqual({ name: "demo" });
    expect(parseVersionQuery("demo ")).toEqual({ name: "demo" });
  });

  it("refuses what cannot name a model or version", () => {
    expect(parseVersionQuery("")).toBeUndefined();
    expect(parseVersionQuery("demo/versions/0")).toBeUndefined();
    expect(parseVersionQuery("two words here")).toBeUndefined();
    expect(parseVersionQuery("-demo")).toBeUndefined();
  });
});

describe("jobMatches", () => {
  const job = { id: "0193a7f2-1111", model: "demo", outputModel: "demo-chat" };
  it("matches an id prefix or the model's name", () => {
    expect(jobMatches(job, "0193")).toBe(true);
    expect(jobMatches(job, "1111")).toBe(false);
    expect(jobMatches(job, "DEMO")).toBe(true);
    expect(jobMatches(job, "chat")).toBe(true);
    expect(jobMatches(job, "other")).toBe(false);
  });
});
