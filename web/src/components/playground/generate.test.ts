import { afterEach, describe, expect, it } from "vitest";

import { ApiError } from "@/api/errors";
import { generateStream, isAbort } from "@/components/playground/generate";
import { auth } from "@/lib/auth";

function ndjsonResponse(lines: string[], status = 200): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const encoder = new TextEncoder();
      for (const line of lines) controller.enqueue(encoder.encode(line));
      controller.close();
    },
  });
  return new Response(body, { status, headers: { "Content-Type": "application/x-ndjson" } });
}

afterEach(() => auth.signIn(""));

describe("generateStream", () => {
  it("POSTs the request as JSON with the key and delivers each result line", async () => {
    auth.signIn("k1");
    let seen: { url: string; init: RequestInit } | undefined;
    const fake = (async (url: string, init: RequestInit) => {
      seen = { url, init };
      return ndjsonResponse(['{"result": {"text": "Pa"}}\n{"result": {"te', 'xt": "ris", "modelVersion": "m/versions/1"}}\n']);
    }) as unknown as typeof fetch;
    const results: unknown[] = [];
    await generateStream({ model: "m@prod", messages: [{ role: "user", content: "hi" }] }, (r) => results.push(r), new AbortController().signal, fake);
    expect(seen?.url).toBe("/v1/generate:stream");
    expect(seen?.init.method).toBe("POST");
    expect(JSON.parse(String(seen?.init.body))).toEqual({ model: "m@prod", messages: [{ role: "user", content: "hi" }] });
    expect((seen?.init.headers as Record<string, string>).Authorization).toBe("Bearer k1");
    expect(results).toEqual([{ text: "Pa" }, { text: "ris", modelVersion: "m/versions/1" }]);
  });

  it("turns an error line or an error answer into an ApiError, and a 401 into a sign-in request", async () => {
    const errorLine = (async () => ndjsonResponse(['{"result": {"text": "a"}}\n{"error": {"code": 8, "message": "busy"}}\n'])) as unknown as typeof fetch;
    await expect(generateStream({ model: "m" }, () => {}, new AbortController().signal, errorLine)).rejects.toMatchObject({ message: "busy", code: 8 });
    const refused = (async () => new Response('{"code": 16, "message": "no key"}', { status: 401 })) as unknown as typeof fetch;
    const error = await generateStream({ model: "m" }, () => {}, new AbortController().signal, refused).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(auth.get().signInRequired).toBe(true);
  });

  it("recognises an abort", () => {
    expect(isAbort(new DOMException("stopped", "AbortError"))).toBe(true);
    expect(isAbort(new Error("x"))).toBe(false);
  });
});
