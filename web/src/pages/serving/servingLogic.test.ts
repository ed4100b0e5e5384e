import { describe, expect, it } from "vitest";

import {
  formatCountdown,
  formatGb,
  formatMs,
  metricsPoints,
  metricsTotals,
  minutePoints,
  secondsToUnload,
  servedVersion,
  trainingPoints,
  versionLink,
} from "./servingLogic";

describe("serving display forms", () => {
  it("names the adapter when one is served, else the model version", () => {
    expect(servedVersion({ modelVersion: "base/versions/1", adapterVersion: "ft/versions/2" })).toBe("ft/versions/2");
    expect(servedVersion({ modelVersion: "base/versions/1" })).toBe("base/versions/1");
    expect(versionLink("smollm2/versions/3")).toBe("/models/smollm2/versions/3");
  });

  it("formats a countdown, memory and latencies", () => {
    expect(formatCountdown(245.7)).toBe("4:05");
    expect(formatCountdown(-3)).toBe("0:00");
    expect(formatCountdown(3723)).toBe("1:02:03");
    expect(formatGb(0.5234)).toBe("0.52 GB");
    expect(formatGb(0.005)).toBe("5 MB");
    expect(formatGb(undefined)).toBe("0.00 GB");
    expect(formatMs(undefined)).toBe("–");
    expect(formatMs(0.842)).toBe("0.84 ms");
    expect(formatMs(12.34)).toBe("12.3 ms");
    expect(formatMs(1204.4)).toBe("1,204 ms");
  });

  it("counts down to the unload time and has none while streaming", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(secondsToUnload({ unloadTime: "2026-01-01T00:01:30Z" }, now)).toBe(90);
    expect(secondsToUnload({ unloadTime: "2025-12-31T23:59:00Z" }, now)).toBe(0);
    expect(secondsToUnload({ activeStreams: 1 }, now)).toBeNull();
  });
});

describe("chart rows", () => {
  it("reads int64 strings and omitted zeros, and makes per-minute rates from 10 s buckets", () => {
    const rows = metricsPoints({
      bucketSeconds: 10,
      buckets: [
        { startTime: "2026-01-01T00:00:00Z", requestCount: "2", errorCount: "1", generatedTokens: "40", tokensPerSecond: 4 },
        { startTime: "2026-01-01T00:00:10Z" },
      ],
    });
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ requestsPerMinute: 12, errorsPerMinute: 6, tokensPerSecond: 4 });
    expect(rows[1]).toMatchObject({ requestsPerMinute: 0, ttftP95: null, queueMax: 0 });
    expect(rows[1]!.t - rows[0]!.t).toBe(10_000);
    expect(metricsTotals({ buckets: [{ requestCount: "2", errorCount: "1" }, { requestCount: "3" }] })).toEqual({
      requests: 5,
      errors: 1,
      tokens: 0,
    });
    expect(minutePoints({ recent: [{ startTime: "2026-01-01T00:00:00Z", requestCount: "3", tokensPerSecond: 50 }] })).toEqual([
      { t: Date.parse("2026-01-01T00:00:00Z"), requests: 3, tokens: 0, ttftMs: null, tokensPerSecond: 50 },
    ]);
  });
});

describe("trainingPoints", () => {
  it("reads each bucket's rate and running jobs, zero where the JSON omits them", () => {
    expect(trainingPoints(undefined)).toEqual([]);
    expect(
      trainingPoints({
        bucketSeconds: 10,
        buckets: [{ startTime: "2026-01-01T00:00:00Z", trainedTokens: "120", tokensPerSecond: 12, runningJobs: 1 }, { startTime: "2026-01-01T00:00:10Z" }],
      }),
    ).toEqual([
      { t: Date.parse("2026-01-01T00:00:00Z"), tokensPerSecond: 12, runningJobs: 1 },
      { t: Date.parse("2026-01-01T00:00:10Z"), tokensPerSecond: 0, runningJobs: 0 },
    ]);
  });
});
