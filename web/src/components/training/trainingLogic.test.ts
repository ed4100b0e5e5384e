import { describe, expect, it } from "vitest";

import {
  addProgress,
  allowedActions,
  boundsText,
  differingKeys,
  downsample,
  etaSeconds,
  type LossPoint,
  versionLink,
} from "@/components/training/trainingLogic";

describe("allowedActions", () => {
  it("follows the trainer's rules", () => {
    expect(allowedActions({ state: "TRAINING_JOB_STATE_QUEUED" })).toEqual({ cancel: true, resume: false, retry: false });
    expect(allowedActions({ state: "TRAINING_JOB_STATE_RUNNING" }).cancel).toBe(true);
    expect(allowedActions({ state: "TRAINING_JOB_STATE_RUNNING", cancelRequested: true }).cancel).toBe(false);
    expect(allowedActions({ state: "TRAINING_JOB_STATE_CANCELLED" })).toEqual({ cancel: false, resume: false, retry: true });
    expect(allowedActions({ state: "TRAINING_JOB_STATE_FAILED", checkpoints: [{ step: "10" }] })).toEqual({
      cancel: false,
      resume: true,
      retry: true,
    });
    expect(allowedActions({ state: "TRAINING_JOB_STATE_SUCCEEDED" })).toEqual({ cancel: false, resume: false, retry: false });
  });
});

describe("loss points", () => {
  it("a resumed attempt replaces the steps after its checkpoint", () => {
    const points: LossPoint[] = [];
    for (const step of [1, 2, 3, 4]) addProgress(points, { step: String(step), loss: step });
    addProgress(points, { step: "3", loss: 30, hasValidationLoss: true, validationLoss: 2 });
    expect(points.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(points[2]).toEqual({ step: 3, loss: 30, validationLoss: 2 });
    expect(addProgress([], { step: "0", hasValidationLoss: true, validationLoss: 3 })).toEqual([{ step: 0, validationLoss: 3 }]);
  });

  it("downsamples long curves, keeping validation points and the last", () => {
    const points: LossPoint[] = Array.from({ length: 10_000 }, (_, i) => ({ step: i + 1, loss: 1, validationLoss: i === 4321 ? 0.5 : undefined }));
    const shown = downsample(points, 2000);
    expect(shown.length).toBeLessThanOrEqual(2002);
    expect(shown.at(-1)?.step).toBe(10_000);
    expect(shown.some((p) => p.step === 4322)).toBe(true);
    expect(downsample(points.slice(0, 5))).toHaveLength(5);
  });
});

describe("formatting", () => {
  it("estimates the time left from the pace so far", () => {
    const start = new Date(0).toISOString();
    expect(etaSeconds(50, 100, start, 10_000)).toBeCloseTo(10);
    expect(etaSeconds(0, 100, start, 10_000)).toBeUndefined();
  });
  it("links versions and writes bounds", () => {
    expect(versionLink("tiny/versions/2")).toEqual({ to: "/models/tiny/versions/2", label: "tiny v2" });
    expect(versionLink("")).toBeUndefined();
    expect(boundsText({ minimum: 0, exclusiveMinimum: true, maximum: 1 })).toBe("0 < x ≤ 1");
  });
  it("finds differing config fields", () => {
    const keys = differingKeys([{ rank: 8, iters: 10 }, { rank: 8, iters: 20 }]);
    expect([...keys]).toEqual(["iters"]);
  });
});
