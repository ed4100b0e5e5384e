/**
 * The filtered event log for the audit page: read in full when the filters
 * change (paged finite reads), then, while `follow` is on, followed live from
 * the last position read. Events land in one EventBuffer, flushed in batches.
 */
import { useEffect, useState, useSyncExternalStore } from "react";

import type { ConnectionState } from "@/api/stream";
import type { ReadEventsResponse } from "@/api/types";
import { useFollow } from "@/api/useFollow";
import { EventBuffer } from "@/pages/audit/eventBuffer";
import { type AuditFilters, filtersKey, filtersToQuery } from "@/pages/audit/filters";
import { readLog } from "@/pages/audit/readLog";

interface Loaded {
  key: string;
  error?: unknown;
}

export interface EventLog {
  buffer: EventBuffer;
  /** Changes whenever the buffer's events do. */
  version: number;
  loading: boolean;
  error: unknown;
  followState: ConnectionState | undefined;
  followError: unknown;
}

export function useEventLog(filters: AuditFilters, follow: boolean): EventLog {
  const [buffer] = useState(() => new EventBuffer());
  const version = useSyncExternalStore(buffer.subscribe, buffer.getSnapshot, buffer.getSnapshot);
  const key = filtersKey(filters);
  const [loaded, setLoaded] = useState<Loaded>();
  // Where live following starts: the end of the finite read, or where the buffer was when follow was switched on.
  const [followFrom, setFollowFrom] = useState<{ key: string; position: string }>();

  useEffect(() => {
    buffer.reset();
    const controller = new AbortController();
    readLog({ query: filtersToQuery(filters), signal: controller.signal, onEvent: (event) => buffer.push(event) })
      .then(() => {
        buffer.flush();
        setFollowFrom({ key, position: buffer.lastPosition });
        setLoaded({ key });
      })
      .catch((error: unknown) => {
        if (controller.signal.aborted) return;
        buffer.flush();
        setLoaded({ key, error });
      });
    return () => controller.abort();
    // The key stands for the filters: restart exactly when they change.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [buffer, key]);

  const done = loaded?.key === key;
  const ok = done && loaded.error === undefined;
  const { state, error: followError } = useFollow<ReadEventsResponse>({
    path: "/v1/events",
    enabled: follow && ok && followFrom?.key === key,
    afterPosition: followFrom?.position ?? "0",
    key,
    query: (after) => ({ ...filtersToQuery(filters), afterPosition: after, follow: true }),
    positionOf: (result) => result.event?.position,
    onResult: (result) => buffer.push(result.event),
  });

  return {
    buffer,
    version,
    loading: !done,
    error: done ? loaded.error : undefined,
    followState: follow && ok ? state : undefined,
    followError: follow && ok ? followError : undefined,
  };
}

