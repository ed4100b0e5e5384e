/**
 * The newest registry events, live: starts a few events back from the log's end
 * and follows it, newest on top. Each new event also refreshes the counts.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Activity, Box, Database } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import type { HubEvent, ReadEventsResponse } from "@/api/types";
import { useFollow } from "@/api/useFollow";
import { EventSummary, RelativeTime } from "@/components/events/EventSummary";
import { Card, CardContent, CardDescription, CardHeader } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";

/** How many past events the feed opens with, and the most it keeps. */
export const BACKLOG = 20;
const KEEP = 100;

/** Newest first, each position once. */
export function addEvent(events: HubEvent[], event: HubEvent, keep = KEEP): HubEvent[] {
  if (!event.position || events.some((e) => e.position === event.position)) return events;
  const position = BigInt(event.position);
  const index = events.findIndex((e) => BigInt(e.position ?? "0") < position);
  const next = index < 0 ? [...events, event] : [...events.slice(0, index), event, ...events.slice(index)];
  return next.slice(0, keep);
}

export function ActivityFeed() {
  const queryClient = useQueryClient();
  // Where the feed starts is read once per visit (the stats query itself refreshes on every event).
  const start = useQuery({
    queryKey: ["overview", "feed-start"],
    queryFn: () => call(api.GET("/v1/registry/stats")),
    staleTime: Infinity,
    gcTime: 0,
    refetchOnWindowFocus: false,
  });
  const last = start.data ? BigInt(start.data.lastEventPosition ?? "0") : undefined;
  const after = last === undefined ? undefined : String(last > BigInt(BACKLOG) ? last - BigInt(BACKLOG) : 0n);
  const [events, setEvents] = useState<HubEvent[]>([]);
  const again = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(again.current), []);

  // The counts come from the registry's read model, which catches up with the log a moment after
  // an event: refresh now and once more shortly after the last event of a burst.
  const refreshCounts = () => {
    const refresh = () => {
      void queryClient.invalidateQueries({ queryKey: ["registry-stats"] });
      void queryClient.invalidateQueries({ queryKey: ["datasets"] });
    };
    refresh();
    clearTimeout(again.current);
    again.current = setTimeout(refresh, 1000);
  };

  const { state, error } = useFollow<ReadEventsResponse>({
    path: "/v1/events",
    afterPosition: after,
    enabled: after !== undefined,
    query: (afterPosition) => ({ afterPosition, follow: true }),
    positionOf: (r) => r.event?.position,
    onResult: (r) => {
      const event = r.event;
      if (!event) return;
      setEvents((current) => addEvent(current, event));
      if (last !== undefined && event.position && BigInt(event.position) > last) refreshCounts();
    },
  });

  const status =
    state === "live" ? "Live" : state === "reconnecting" ? "Reconnecting…" : state === "stopped" ? "Stopped" : "Connecting…";

  return (
    <Card>
      <CardHeader className="flex-row items-start justify-between gap-4">
        <div className="grid gap-1">
          <h2 className="leading-none font-semibold">Activity</h2>
          <CardDescription>Every change to the registry as it happens, newest first.</CardDescription>
        </div>
        <div className="flex items-center gap-3 text-sm">
          <span className="flex items-center gap-1.5 text-muted-foreground" role="status" data-testid="feed-state">
            <span
              aria-hidden="true"
              className={
                state === "live"
                  ? "size-2 rounded-full bg-success"
                  : state === "stopped"
                    ? "size-2 rounded-full bg-destructive"
                    : "size-2 animate-pulse rounded-full bg-warning"
              }
            />
            {status}
          </span>
          <Link to="/audit" className="underline underline-offset-4">
            Audit log
          </Link>
        </div>
      </CardHeader>
      <CardContent>
        {start.isError ? (
          <p role="alert" className="text-sm text-destructive">
            Could not read the event log: {errorMessage(start.error)}
          </p>
        ) : state === "stopped" && error ? (
          <p role="alert" className="text-sm text-destructive">
            The live feed stopped: {errorMessage(error)}
          </p>
        ) : null}
        {start.isPending ? (
          <div className="grid gap-2">
            {Array.from({ length: 4 }, (_, i) => (
              <Skeleton key={i} className="h-6 w-full" />
            ))}
          </div>
        ) : events.length === 0 && start.data ? (
          <p className="py-6 text-center text-sm text-muted-foreground">
            {state === "live" ? "No events yet — register a model or dataset and it shows up here." : "Waiting for events…"}
          </p>
        ) : (
          <ol aria-label="Newest events" className="divide-y" data-testid="activity-feed">
            {events.map((event) => {
              const Icon = event.aggregateType === "Dataset" ? Database : event.aggregateType === "Model" ? Box : Activity;
              return (
                <li key={event.position} className="flex items-baseline gap-3 py-2 text-sm">
                  <Icon aria-hidden="true" className="size-4 shrink-0 translate-y-0.5 text-muted-foreground" />
                  <EventSummary event={event} className="flex-1" />
                  <RelativeTime iso={event.time} className="text-xs text-muted-foreground" />
                </li>
              );
            })}
          </ol>
        )}
      </CardContent>
    </Card>
  );
}
