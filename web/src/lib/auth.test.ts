import { describe, expect, it } from "vitest";

import { ApiError } from "@/api/errors";
import { createAuthStore, KEY_STORAGE } from "@/lib/auth";

function memoryStorage(initial: Record<string, string> = {}) {
  const map = new Map(Object.entries(initial));
  return {
    map,
    getItem: (k: string) => map.get(k) ?? null,
    setItem: (k: string, v: string) => void map.set(k, v),
    removeItem: (k: string) => void map.delete(k),
  };
}

describe("createAuthStore", () => {
  it("starts from the kept key and sends it as a Bearer header", () => {
    const store = createAuthStore(memoryStorage({ [KEY_STORAGE]: "alice-key" }));
    expect(store.get()).toEqual({ key: "alice-key", signInRequired: false, reason: "" });
    expect(store.headers()).toEqual({ Authorization: "Bearer alice-key" });
  });

  it("sends no header without a key", () => {
    expect(createAuthStore(memoryStorage()).headers()).toEqual({});
    expect(createAuthStore(undefined).headers()).toEqual({});
  });

  it("signIn keeps the key, closes the prompt and tells subscribers", () => {
    const storage = memoryStorage();
    const store = createAuthStore(storage);
    let calls = 0;
    store.subscribe(() => calls++);
    store.unauthorized();
    store.signIn("bob-key");
    expect(storage.map.get(KEY_STORAGE)).toBe("bob-key");
    expect(store.get()).toEqual({ key: "bob-key", signInRequired: false, reason: "" });
    expect(calls).toBe(2);
    // A new store over the same storage (a reload) keeps the session.
    expect(createAuthStore(storage).get().key).toBe("bob-key");
  });

  it("unauthorized asks for a key, with a reason only when a key was kept", () => {
    const fresh = createAuthStore(memoryStorage());
    fresh.unauthorized();
    expect(fresh.get()).toMatchObject({ signInRequired: true, reason: "" });

    const kept = createAuthStore(memoryStorage({ [KEY_STORAGE]: "revoked" }));
    kept.unauthorized();
    expect(kept.get().signInRequired).toBe(true);
    expect(kept.get().reason).toMatch(/did not accept the saved API key/);
  });

  it("a 401 for a call sent before signing in leaves the new key alone", () => {
    const store = createAuthStore(memoryStorage());
    store.unauthorized(""); // the app's first calls, without a key
    store.signIn("alice-key");
    store.unauthorized(""); // one of them answered after the sign-in
    expect(store.get()).toEqual({ key: "alice-key", signInRequired: false, reason: "" });
    store.unauthorized("alice-key"); // the new key itself refused
    expect(store.get()).toMatchObject({ signInRequired: true, reason: expect.stringMatching(/did not accept/) });
  });

  it("a burst of 401s notifies once", () => {
    const store = createAuthStore(memoryStorage({ [KEY_STORAGE]: "revoked" }));
    let calls = 0;
    store.subscribe(() => calls++);
    store.unauthorized();
    store.unauthorized();
    store.unauthorized();
    expect(calls).toBe(1);
  });

  it("signOut forgets the key and asks again without a reason", () => {
    const storage = memoryStorage({ [KEY_STORAGE]: "alice-key" });
    const store = createAuthStore(storage);
    store.signOut();
    expect(storage.map.has(KEY_STORAGE)).toBe(false);
    expect(store.get()).toEqual({ key: "", signInRequired: true, reason: "" });
    expect(store.headers()).toEqual({});
  });

  it("unsubscribing stops notifications", () => {
    const store = createAuthStore(memoryStorage());
    let calls = 0;
    const unsubscribe = store.subscribe(() => calls++);
    unsubscribe();
    store.signIn("k");
    expect(calls).toBe(0);
  });
});

describe("ApiError.violationsByField", () => {
  const status = {
    code: 3,
    message: "invalid model",
    details: [
      { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "INVALID" },
      {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        fieldViolations: [
          { field: "base_model", description: "must not contain control characters" },
          { field: "name", description: "must match ^[a-z0-9]..." },
        ],
      },
    ],
  };

  it("keys each violation by its proto name and its camelCase name", () => {
    const error = new ApiError(400, status as never);
    expect(error.message).toBe("invalid model");
    expect(error.code).toBe(3);
    expect(error.violationsByField()).toEqual({
      base_model: "must not contain control characters",
      baseModel: "must not contain control characters",
      name: "must match ^[a-z0-9]...",
    });
  });

  it("is empty without a BadRequest detail, and the message falls back to the HTTP status", () => {
    const error = new ApiError(502, undefined, "Bad Gateway");
    expect(error.violationsByField()).toEqual({});
    expect(error.message).toBe("Bad Gateway (HTTP 502)");
  });
});
