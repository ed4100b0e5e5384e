import { describe, expect, it } from "vitest";

import { ApiError } from "@/api/errors";
import { isConflict, splitError } from "@/components/models/forms";

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
