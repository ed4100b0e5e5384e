/**
 * POST /v1/generate:stream read line by line (the shared readStream is GET only).
 * Aborting the signal closes the connection, and the gateway cancels the upstream
 * call, so Stop frees the server's stream at once.
 */
import { ApiError, errorFromResponse } from "@/api/errors";
import { ndjson } from "@/api/stream";
import type { Status } from "@/api/types";
import type { GenerateStreamRequest, GenerateStreamResponse } from "@/lib/conversations";
import { auth } from "@/lib/auth";

export async function generateStream(
  request: GenerateStreamRequest,
  onResult: (message: GenerateStreamResponse) => void,
  signal: AbortSignal,
  fetchImpl: typeof fetch = fetch,
): Promise<void> {
  const sent = auth.get().key; // a 401 speaks of this key, not of one signed in meanwhile
  const response = await fetchImpl("/v1/generate:stream", {
    method: "POST",
    headers: { Accept: "application/x-ndjson", "Content-Type": "application/json", ...auth.headers() },
    body: JSON.stringify(request),
    signal,
  });
  if (!response.ok || !response.body) {
    if (response.status === 401) auth.unauthorized(sent);
    throw await errorFromResponse(response);
  }
  for await (const line of ndjson(response.body)) {
    const message = line as { result?: GenerateStreamResponse; error?: Status };
    if (message.error) throw new ApiError(200, message.error);
    if (message.result !== undefined) onResult(message.result);
  }
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}
