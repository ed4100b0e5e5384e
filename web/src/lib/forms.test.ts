import { describe, expect, it } from "vitest";

import { ApiError, isConflict } from "@/api/errors";
import { controlProps, splitError } from "@/lib/forms";

function badRequest(httpStatus: number, code: number, message: string, violations: [string, string][]) {
  return new ApiError(httpStatus, {
    code,
    message,
    details: [
      {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        fieldViolations: violations.map(([field, description]) => ({ field, description })),
      },
    ],
  });
}

describe("splitError", () => {
  it("puts each violation beside its field, proto names read as camelCase", () => {
    const error = badRequest(400, 3, "artifact_path must be absolute", [["artifact_path", "must be absolute"]]);
    expect(splitError(error, ["artifactPath", "description"])).toEqual({ fields: { artifactPath: "must be absolute" }, form: undefined });
  });

  it("maps a map entry's violation (tags[key]) to the map's field", () => {
    const error = badRequest(400, 3, "bad tag", [["tags[team]", "keys need 1-64 characters"]]);
    expect(splitError(error, ["name", "tags"]).fields).toEqual({ tags: "keys need 1-64 characters" });
  });

  it("shows the message at form level when no violation has a field on the form", () => {
    const error = badRequest(400, 3, "update_mask is wrong", [["update_mask", "nope"]]);
    expect(splitError(error, ["description"])).toEqual({ fields: {}, form: "update_mask is wrong" });
    expect(splitError(new ApiError(409, { code: 6, message: "model 'x' already exists" }), ["name"])).toEqual({
      fields: {},
      form: "model 'x' already exists",
    });
    expect(splitError(new Error("offline"), ["name"]).form).toBe("offline");
    expect(splitError(null, ["name"])).toEqual({ fields: {} });
  });

  it("puts a taken name (ALREADY_EXISTS, no field) beside the field the form names for it", () => {
    const taken = new ApiError(409, { code: 6, message: "dataset 'chat' already exists" });
    expect(splitError(taken, ["name", "path"], { alreadyExists: "name" })).toEqual({
      fields: { name: "dataset 'chat' already exists" },
      form: undefined,
    });
    // A stale etag is also a 409, but not a taken name: it stays with the form.
    const stale = new ApiError(409, { code: 10, message: "changed since etag 3" });
    expect(splitError(stale, ["name"], { alreadyExists: "name" })).toEqual({ fields: {}, form: "changed since etag 3" });
  });

  it("keeps the form message when some violations are placed and others are not", () => {
    const error = badRequest(400, 3, "two problems", [
      ["path", "lies outside the data roots"],
      ["update_mask", "unknown field"],
    ]);
    expect(splitError(error, ["name", "path"])).toEqual({ fields: { path: "lies outside the data roots" }, form: "two problems" });
  });

  it("places a nested config field's violation on that field, not on its parent", () => {
    const error = badRequest(400, 3, "bad rate", [["config.learning_rate", "must be positive"]]);
    expect(splitError(error, ["model", "config.learningRate", "config.rank"]).fields).toEqual({ "config.learningRate": "must be positive" });
  });
});

describe("controlProps", () => {
  it("marks a control invalid and points it at its violation only when there is one", () => {
    expect(controlProps("register-model-name", undefined)).toEqual({ id: "register-model-name" });
    expect(controlProps("register-model-name", "taken")).toEqual({
      id: "register-model-name",
      "aria-invalid": true,
      "aria-describedby": "register-model-name-error",
    });
  });

  it("describes a control by its hint, then its violation", () => {
    expect(controlProps("job-config-rank", undefined, true)).toEqual({ id: "job-config-rank", "aria-describedby": "job-config-rank-hint" });
    expect(controlProps("job-config-rank", "too big", true)).toEqual({
      id: "job-config-rank",
      "aria-invalid": true,
      "aria-describedby": "job-config-rank-hint job-config-rank-error",
    });
  });
});

describe("isConflict", () => {
  it("is a stale etag (ABORTED, FAILED_PRECONDITION, 412), not an existing name", () => {
    expect(isConflict(new ApiError(409, { code: 10, message: "changed since etag 3" }))).toBe(true);
    expect(isConflict(new ApiError(400, { code: 9, message: "precondition" }))).toBe(true);
    expect(isConflict(new ApiError(412, undefined))).toBe(true);
    expect(isConflict(new ApiError(409, { code: 6, message: "already exists" }))).toBe(false);
    expect(isConflict(new Error("x"))).toBe(false);
  });
});
