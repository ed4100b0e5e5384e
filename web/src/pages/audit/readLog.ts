/**
 * Reading the whole (filtered) event log in pages: each page is one finite
 * ReadEvents stream of at most `pageSize` events, the next one starting after
 * the last position read, so no single request holds a server stream for long.
 */
import { readStream } from "@/api/stream";
import type { HubEvent, ReadEventsQuery, ReadEventsResponse } from "@/api/types";

export const PAGE_SIZE = 10_000;

export interface ReadLogOptions {
  query: ReadEventsQuery;
  /** Read after this position ("0" for the beginning). */
  afterPosition?: string;
  pageSize?: number;
  signal?: AbortSignal;
  onEvent: (event: HubEvent) => void;
  fetchImpl?: typeof fetch;
}

/** Resolves with the position of the last event read (or the start position when none matched). */
export async function readLog(options: ReadLogOptions): Promise<string> {
  const pageSize = options.pageSize ?? PAGE_SIZE;
  let after = options.afterPosition ?? "0";
  for (;;) {
    let count = 0;
    await readStream<ReadEventsResponse>("/v1/events", {
      query: { ...options.query, afterPosition: after, limit: String(pageSize) },
      signal: options.signal,
      fetchImpl: options.fetchImpl,
      onResult: (result) => {
        const event = result.event;
        if (!event) return;
        count += 1;
        if (event.position) after = event.position;
        options.onEvent(event);
      },
    });
    if (count < pageSize || options.signal?.aborted) return after;
  }
}
