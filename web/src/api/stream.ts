/**
 * Reading the gateway's NDJSON streams with fetch (EventSource cannot send the
 * Authorization header). Each line is `{"result": ...}` or a final
 * `{"error": <google.rpc.Status>}`. `follow` keeps a stream open across dropped
 * connections, resuming after the last position it delivered.
 */
import { ApiError, errorFromResponse } from "@/api/errors";
import type { Status } from "@/api/types";
import { auth } from "@/lib/auth";

export type Query = Record<string, string | number | boolean | readonly string[] | undefined | null>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(name, String(v)));
    else params.append(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** Split a byte stream into parsed NDJSON lines (a line may arrive across several chunks). */
export async function* ndjson(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) yield JSON.parse(line);
      }
    }
    buffered += decoder.decode();
    if (buffered.trim()) yield JSON.parse(buffered);
  } finally {
    reader.releaseLock();
  }
}

export interface StreamOptions<T> {
  query?: Query;
  signal?: AbortSignal;
  onResult: (result: T) => void;
  /** Called once the server has accepted the stream (before its first line, which may be long in coming). */
  onOpen?: () => void;
  fetchImpl?: typeof fetch;
}

/** Read one stream to its end: resolves when the server ends it, rejects with ApiError on an error line. */
export async function readStream<T>(path: string, options: StreamOptions<T>): Promise<void> {
  const doFetch = options.fetchImpl ?? fetch;
  const sent = auth.get().key; // a 401 speaks of this key, not of one signed in meanwhile
  const response = await doFetch(withQuery(path, options.query), {
    headers: { Accept: "application/x-ndjson", ...auth.headers() },
    signal: options.signal,
  });
  if (!response.ok || !response.body) {
    if (response.status === 401) auth.unauthorized(sent);
    throw await errorFromResponse(response);
  }
  options.onOpen?.();
  for await (const line of ndjson(response.body)) {
    const message = line as { result?: T; error?: Status };
    if (message.error) throw new ApiError(200, message.error);
    if (message.result !== undefined) options.onResult(message.result);
  }
}

export type ConnectionState = "connecting" | "live" | "reconnecting" | "stopped";

export interface FollowOptions<T> {
  path: string;
  /** The query for a (re)connection, given the last position delivered so far ("0" at first). */
  query: (afterPosition: string) => Query;
  /** The position of a result, to resume after it. */
  positionOf: (result: T) => string | undefined;
  onResult: (result: T) => void;
  onState?: (state: ConnectionState, error?: unknown) => void;
  afterPosition?: string;
  fetchImpl?: typeof fetch;
  /** Delay before reconnection attempt n (1, 2, ...), in ms. */
  backoff?: (attempt: number) => number;
}

/**
 * gRPC codes an error line can carry that reconnecting will not cure: INVALID_ARGUMENT,
 * NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE,
 * UNIMPLEMENTED, UNAUTHENTICATED (UNAVAILABLE, RESOURCE_EXHAUSTED and the like are retried).
 */
const PERMANENT_CODES = new Set([3, 5, 6, 7, 9, 11, 12, 16]);

/** Errors that will not go away by reconnecting: bad requests and refused keys. */
function permanent(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  if (error.httpStatus === 200) return PERMANENT_CODES.has(error.code); // an error line in an accepted stream
  return error.httpStatus >= 400 && error.httpStatus < 500 && error.httpStatus !== 429;
}

/**
 * Follow a stream until `stop()`: on a dropped connection (or a server that ends
 * the stream) reconnect with backoff, resuming after the last delivered position,
 * so nothing is missed and nothing is delivered twice.
 */
export function follow<T>(options: FollowOptions<T>): { stop: () => void; done: Promise<void> } {
  const controller = new AbortController();
  const backoff = options.backoff ?? ((n: number) => Math.min(500 * 2 ** (n - 1), 5000));
  let after = options.afterPosition ?? "0";
  const setState = (state: ConnectionState, error?: unknown) => options.onState?.(state, error);

  const run = async () => {
    let attempt = 0;
    while (!controller.signal.aborted) {
      setState(attempt === 0 ? "connecting" : "reconnecting");
      try {
        let announced = false;
        const announce = () => {
          if (!announced) {
            announced = true;
            setState("live");
          }
        };
        await readStream<T>(options.path, {
          query: options.query(after),
          signal: controller.signal,
          fetchImpl: options.fetchImpl,
          // A following stream may stay quiet for long: it is live once the server accepts it.
          onOpen: announce,
          onResult: (result) => {
            const position = options.positionOf(result);
            if (position !== undefined && BigInt(position) <= BigInt(after)) return; // already delivered
            if (position !== undefined) after = position;
            attempt = 0;
            announce();
            options.onResult(result);
          },
        });
      } catch (error) {
        if (controller.signal.aborted) break;
        if (permanent(error)) {
          setState("stopped", error);
          return;
        }
        setState("reconnecting", error);
      }
      if (controller.signal.aborted) break;
      attempt += 1;
      // Wait before reconnecting, but not past stop().
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          controller.signal.removeEventListener("abort", wake);
          resolve();
        };
        const timer = setTimeout(wake, backoff(attempt));
        controller.signal.addEventListener("abort", wake);
      });
    }
    setState("stopped");
  };
  const done = run();
  return { stop: () => controller.abort(), done };
}
