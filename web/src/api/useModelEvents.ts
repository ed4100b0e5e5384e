/**
 * Keep a model's pages current: follow the model's events from the log's end as it
 * was when the page opened, and on each one invalidate the model's queries (and the
 * models list), so a change made elsewhere (the CLI, another tab) shows up by itself.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useId } from "react";

import { api, call } from "@/api/client";
import type { ReadEventsResponse } from "@/api/types";
import { useFollow } from "@/api/useFollow";

export function useModelEvents(name: string) {
  const queryClient = useQueryClient();
  const page = useId();
  // Fetched once per mounted page: a new start position would restart the stream.
  const stats = useQuery({
    queryKey: ["model-follow-start", name, page],
    queryFn: () => call(api.GET("/v1/registry/stats")),
    staleTime: Number.POSITIVE_INFINITY,
    gcTime: 0,
  });
  const refresh = useCallback(() => {
    void queryClient.invalidateQueries({ queryKey: ["model", name] });
    void queryClient.invalidateQueries({ queryKey: ["models"] });
  }, [queryClient, name]);
  const follow = useFollow<ReadEventsResponse>({
    path: "/v1/events",
    afterPosition: stats.data?.lastEventPosition ?? "0",
    enabled: stats.isSuccess,
    key: name,
    query: (after) => ({ afterPosition: after, aggregate: `model/${name}`, follow: true }),
    positionOf: (r) => r.event?.position,
    onResult: refresh,
  });
  // Whenever the stream is (again) live, refresh once: a change made between the page's first
  // reads and the stream's start is then shown too.
  useEffect(() => {
    if (follow.state === "live") refresh();
  }, [follow.state, refresh]);
}
