import { describe, expect, it } from "vitest";

import { ApiError } from "@/api/errors";
import { type ConnectionState, follow, ndjson, readStream, withQuery } from "@/api/stream";

const encoder = new TextEncoder();

/** A body sending `chunks` as they are split here, then ending, or failing like a dropped connection. */
function body(chunks: string[], drop?: Error): ReadableStream<Uint8Array> {
  const queue = [...chunks];
  // Pulled one chunk at a time: erroring a stream discards what is still queued in it.
  return new ReadableStream({
    pull(controller) {
      const chunk = queue.shift();
      if (chunk !== undefined) controller.enqueue(encoder.encode(chunk));
      else if (drop) controller.error(drop);
      else controller.close();
    },
  });
}

/** A body that sends `chunks` and then stays open until the request is aborted (a quiet following stream). */
function openBody(chunks: string[], signal: AbortSignal | null | undefined): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      signal?.addEventListener("abort", () => controller.error(new DOMException("aborted", "AbortError")));
    },
  });
}

const ndjsonResponse = (stream: ReadableStream<Uint8Array>) =>
  new Response(stream, { status: 200, headers: { "Content-Type": "application/x-ndjson" } });

const line = (value: unknown) => JSON.stringify(value) + "\n";
const event = (position: number) => line({ result: { event: { position: String(position) } } });

async function collect(stream: ReadableStream<Uint8Array>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const value of ndjson(stream)) out.push(value);
  return out;
}

describe("ndjson", () => {
  it("joins a line split across chunks", async () => {
    const text = line({ result: { name: "demo" } });
    const values = await collect(body([text.slice(0, 5), text.slice(5, 11), text.slice(11)]));
    expect(values).toEqual([{ result: { name: "demo" } }]);
  });

  it("splits a chunk holding several lines, with a line completed by the next chunk", async () => {
    const values = await collect(body(['{"a":1}\n{"b":2}\n{"c"', ":3}\n\n", '{"d":4}']));
    expect(values).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }, { d: 4 }]);
  });

  it("decodes a multi-byte character split between chunks", async () => {
    const bytes = encoder.encode(line({ text: "é✓" }));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 11));
        controller.enqueue(bytes.slice(11));
        controller.close();
      },
    });
    expect(await collect(stream)).toEqual([{ text: "é✓" }]);
  });
});

describe("withQuery", () => {
  it("leaves out empty values and repeats lists", () => {
    expect(withQuery("/v1/events", { afterPosition: "5", follow: true, model: "", x: undefined, tags: ["a=1", "b=2"] })).toBe(
      "/v1/events?afterPosition=5&follow=true&tags=a%3D1&tags=b%3D2",
    );
    expect(withQuery("/v1/events", {})).toBe("/v1/events");
  });
});

describe("readStream", () => {
  it("delivers each result and ends with the stream", async () => {
    const results: unknown[] = [];
    let opened = 0;
    await readStream("/v1/events", {
      fetchImpl: async () => ndjsonResponse(body([event(1), event(2)])),
      onOpen: () => opened++,
      onResult: (r) => results.push(r),
    });
    expect(results).toEqual([{ event: { position: "1" } }, { event: { position: "2" } }]);
    expect(opened).toBe(1);
  });

  it("rejects with the error line's Status as an ApiError, after the results before it", async () => {
    const results: unknown[] = [];
    const failure = readStream("/v1/events", {
      fetchImpl: async () => ndjsonResponse(body([event(1), line({ error: { code: 14, message: "registry unavailable" } })])),
      onResult: (r) => results.push(r),
    });
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    await expect(failure).rejects.toMatchObject({ message: "registry unavailable", code: 14, httpStatus: 200 });
    expect(results).toHaveLength(1);
  });

  it("rejects a non-2xx answer with the Status message and HTTP status", async () => {
    const status = { code: 3, message: "after_position must be >= 0", details: [] };
    const failure = readStream("/v1/events", {
      fetchImpl: async () => new Response(JSON.stringify(status), { status: 400 }),
      onResult: () => undefined,
    });
    await expect(failure).rejects.toMatchObject({ name: "ApiError", message: "after_position must be >= 0", httpStatus: 400, code: 3 });
  });

  it("sends the query and asks for NDJSON", async () => {
    let seen: { url: string; accept: string | null } | undefined;
    await readStream("/v1/events", {
      query: { afterPosition: "7", follow: true },
      fetchImpl: async (input, init) => {
        seen = { url: String(input), accept: new Headers(init?.headers).get("Accept") };
        return ndjsonResponse(body([]));
      },
      onResult: () => undefined,
    });
    expect(seen).toEqual({ url: "/v1/events?afterPosition=7&follow=true", accept: "application/x-ndjson" });
  });
});

interface Scripted {
  (signal: AbortSignal | null | undefined): Response | Promise<Response>;
}

/** A fetch answering each connection with the next script, recording the afterPosition asked for. */
function scriptedFetch(scripts: Scripted[]) {
  const asked: string[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    asked.push(new URL(String(input), "http://hub").searchParams.get("afterPosition") ?? "");
    const script = scripts[asked.length - 1];
    if (!script) throw new Error("more connections than scripted");
    return script(init?.signal);
  }) as typeof fetch;
  return { fetchImpl, asked };
}

function followEvents(fetchImpl: typeof fetch, afterPosition = "0") {
  const delivered: string[] = [];
  const states: { state: ConnectionState; error?: unknown }[] = [];
  let notify: (() => void) | undefined;
  const stream = follow<{ event?: { position?: string } }>({
    path: "/v1/events",
    afterPosition,
    query: (after) => ({ afterPosition: after, follow: true }),
    positionOf: (r) => r.event?.position,
    onResult: (r) => {
      delivered.push(r.event!.position!);
      notify?.();
    },
    onState: (state, error) => states.push({ state, error }),
    fetchImpl,
    backoff: () => 1,
  });
  /** Resolves once `n` results have been delivered. */
  const delivers = (n: number) =>
    new Promise<void>((resolve) => {
      notify = () => delivered.length >= n && resolve();
      notify();
    });
  return { stream, delivered, states, delivers };
}

describe("follow", () => {
  it("resumes after the last position on a dropped connection and never delivers a position twice", async () => {
    const { fetchImpl, asked } = scriptedFetch([
      () => ndjsonResponse(body([event(1), event(2)], new TypeError("network error"))),
      // A server that replays from an older position: positions 1 and 2 must not come again.
      () => ndjsonResponse(body([event(1), event(2), event(3)], new TypeError("network error"))),
      (signal) => ndjsonResponse(openBody([event(3), event(4)], signal)),
    ]);
    const { stream, delivered, states, delivers } = followEvents(fetchImpl);
    await delivers(4);
    stream.stop();
    await stream.done;

    expect(delivered).toEqual(["1", "2", "3", "4"]);
    expect(asked).toEqual(["0", "2", "3"]);
    expect(states.map((s) => s.state)).toEqual([
      "connecting",
      "live",
      "reconnecting", // the drop, with its error
      "reconnecting", // the second connection
      "live",
      "reconnecting",
      "reconnecting",
      "live",
      "stopped",
    ]);
    expect(states[2]!.error).toBeInstanceOf(TypeError);
  });

  it("starts after the given position", async () => {
    const { fetchImpl, asked } = scriptedFetch([(signal) => ndjsonResponse(openBody([event(10), event(11)], signal))]);
    const { stream, delivered, delivers } = followEvents(fetchImpl, "10");
    await delivers(1);
    stream.stop();
    await stream.done;
    expect(asked).toEqual(["10"]);
    expect(delivered).toEqual(["11"]);
  });

  it("is live as soon as the server accepts a quiet stream", async () => {
    const { fetchImpl } = scriptedFetch([(signal) => ndjsonResponse(openBody([], signal))]);
    const { stream, states } = followEvents(fetchImpl);
    await expect.poll(() => states.map((s) => s.state)).toEqual(["connecting", "live"]);
    stream.stop();
    await stream.done;
    expect(states.at(-1)!.state).toBe("stopped");
  });

  it("stops on a 4xx answer instead of reconnecting, reporting the error", async () => {
    const { fetchImpl, asked } = scriptedFetch([
      () => ndjsonResponse(body([event(1)], new TypeError("network error"))),
      () => new Response(JSON.stringify({ code: 5, message: "no such job" }), { status: 404 }),
    ]);
    const { stream, delivered, states } = followEvents(fetchImpl);
    await stream.done;
    expect(delivered).toEqual(["1"]);
    expect(asked).toEqual(["0", "1"]);
    const last = states.at(-1)!;
    expect(last.state).toBe("stopped");
    expect(last.error).toMatchObject({ httpStatus: 404, message: "no such job" });
  });

  it("stops on an error line no retry can cure, and retries one that can", async () => {
    const { fetchImpl, asked } = scriptedFetch([
      () => ndjsonResponse(body([line({ error: { code: 14, message: "unavailable" } })])),
      () => ndjsonResponse(body([line({ error: { code: 3, message: "bad filter" } })])),
    ]);
    const { stream, states } = followEvents(fetchImpl);
    await stream.done;
    expect(asked).toHaveLength(2);
    expect(states.at(-1)).toMatchObject({ state: "stopped", error: { code: 3, message: "bad filter" } });
  });

  it("retries a 5xx and a 429", async () => {
    const { fetchImpl, asked } = scriptedFetch([
      () => new Response(JSON.stringify({ code: 14, message: "down" }), { status: 503 }),
      () => new Response(JSON.stringify({ code: 8, message: "too many streams" }), { status: 429 }),
      (signal) => ndjsonResponse(openBody([event(1)], signal)),
    ]);
    const { stream, delivered, delivers } = followEvents(fetchImpl);
    await delivers(1);
    stream.stop();
    await stream.done;
    expect(asked).toEqual(["0", "0", "0"]);
    expect(delivered).toEqual(["1"]);
  });

  it("stop() during the wait before reconnecting ends it at once", async () => {
    const { fetchImpl, asked } = scriptedFetch([() => ndjsonResponse(body([], new TypeError("network error")))]);
    const states: ConnectionState[] = [];
    const stream = follow({
      path: "/v1/events",
      query: (after) => ({ afterPosition: after }),
      positionOf: () => undefined,
      onResult: () => undefined,
      onState: (s) => states.push(s),
      fetchImpl,
      backoff: () => 60_000,
    });
    await expect.poll(() => states.includes("reconnecting")).toBe(true);
    const started = Date.now();
    stream.stop();
    await stream.done;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(asked).toHaveLength(1);
    expect(states.at(-1)).toBe("stopped");
  });
});
