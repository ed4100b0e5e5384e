/** Serving: the inference server, one tile per loaded version, and the service's recent metrics.
 * Nothing streams these figures, so the page polls them while it is open (2 s tiles, 5 s charts);
 * tiles keep fixed sizes and numbers use tabular figures, so an update never moves the layout. */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { Link } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import { ApiError } from "@/api/errors";
import { PageHeader } from "@/components/PageHeader";
import { MetricsCharts } from "@/components/serving/MetricsCharts";
import { ModelTile } from "@/components/serving/ModelTile";
import { ServerTile } from "@/components/serving/ServerTile";
import { TrainingThroughputChart } from "@/components/serving/TrainingThroughputChart";
import { Skeleton } from "@/components/ui/skeleton";
import { formatCount } from "@/lib/format";
import { metricsPoints, metricsTotals, servedVersion } from "@/pages/serving/servingLogic";

const WINDOW_MINUTES = 15;
const TILE_GRID = "grid gap-4 grid-cols-[repeat(auto-fill,minmax(20rem,1fr))]";

/** The gateway answers 404/5xx for a service that is not part of this stack or not up. */
function notRunning(error: unknown): boolean {
  return !(error instanceof ApiError) || error.httpStatus === 404 || error.httpStatus >= 500;
}

function useNow(intervalMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

function NotRunning({ error }: { error: unknown }) {
  return (
    <div role="status" data-testid="inference-down" className="rounded-xl border bg-card p-6 text-sm">
      <p className="font-medium">The inference service is not running.</p>
      <p className="mt-1 text-muted-foreground">
        Start it with <code className="rounded bg-muted px-1 py-0.5 font-mono text-xs">python -m inference_svc</code> beside
        the registry; this page picks it up by itself.{" "}
        <span className="text-xs" title={errorMessage(error)}>
          ({errorMessage(error)})
        </span>
      </p>
    </div>
  );
}

export default function ServingPage() {
  const info = useQuery({
    queryKey: ["inference", "info"],
    queryFn: () => call(api.GET("/v1/inference/info")),
    retry: false,
    refetchInterval: 2_000,
  });
  const loaded = useQuery({
    queryKey: ["inference", "loaded"],
    queryFn: () => call(api.GET("/v1/inference/models")),
    retry: false,
    refetchInterval: 2_000,
  });
  const metrics = useQuery({
    queryKey: ["inference", "metrics", WINDOW_MINUTES],
    queryFn: () => call(api.GET("/v1/inference/metrics", { params: { query: { windowMinutes: WINDOW_MINUTES } } })),
    retry: false,
    refetchInterval: 5_000,
  });
  const now = useNow(1_000);
  const models = useMemo(
    () => [...(loaded.data?.models ?? [])].sort((a, b) => servedVersion(a).localeCompare(servedVersion(b))),
    [loaded.data],
  );
  const points = useMemo(() => metricsPoints(metrics.data), [metrics.data]);
  const totals = useMemo(() => metricsTotals(metrics.data), [metrics.data]);
  const down = info.isError && notRunning(info.error) && !info.data;

  return (
    <div>
      <PageHeader
        title="Serving"
        description="The inference server, the versions it holds in memory and its last 15 minutes, updating live."
      />
      {down ? (
        <NotRunning error={info.error} />
      ) : (
        <div className="grid gap-8">
          <section aria-label="Server and loaded versions" className={TILE_GRID}>
            {info.data ? (
              <ServerTile info={info.data} />
            ) : info.isError ? (
              <div role="alert" className="h-72 rounded-xl border p-5 text-sm text-destructive">
                Could not read the server's info: {errorMessage(info.error)}
              </div>
            ) : (
              <Skeleton className="h-72 w-full rounded-xl" />
            )}
            {loaded.isPending && <Skeleton className="h-72 w-full rounded-xl" />}
            {loaded.isError && !loaded.data && (
              <div role="alert" className="h-72 rounded-xl border p-5 text-sm text-destructive">
                Could not list the loaded versions: {errorMessage(loaded.error)}
              </div>
            )}
            {models.map((model) => (
              <ModelTile key={servedVersion(model)} model={model} now={now} />
            ))}
            {loaded.data && models.length === 0 && (
              <div
                data-testid="no-loaded"
                className="flex h-72 flex-col items-center justify-center gap-1 rounded-xl border border-dashed p-5 text-center text-sm text-muted-foreground"
              >
                <p className="font-medium text-foreground">No version loaded</p>
                <p>
                  A generation loads its version: try one in the{" "}
                  <Link to="/playground" className="underline underline-offset-2">
                    playground
                  </Link>
                  .
                </p>
              </div>
            )}
          </section>

          <section aria-labelledby="metrics-title" className="flex flex-col gap-3">
            <div className="flex flex-wrap items-baseline justify-between gap-2">
              <div>
                <h2 id="metrics-title" className="text-lg font-semibold">
                  Metrics
                </h2>
                <p className="text-sm text-muted-foreground">
                  Last {WINDOW_MINUTES} minutes in 10-second buckets, recorded by the inference and training services
                  themselves.
                </p>
              </div>
              <dl className="flex gap-5 text-sm tabular-nums" data-testid="metrics-totals">
                <div>
                  <dt className="text-xs text-muted-foreground">Requests</dt>
                  <dd className="font-semibold" data-testid="total-requests">
                    {metrics.data ? formatCount(totals.requests) : "…"}
                  </dd>
                </div>
                <div>
                  <dt className="text-xs text-muted-foreground">Errors</dt>
                  <dd className="font-semibold" data-testid="total-errors">
                    {metrics.data ? formatCount(totals.errors) : "…"}
                  </dd>
                </div>
                <div>
                  <dt className="text-xs text-muted-foreground">Tokens</dt>
                  <dd className="font-semibold" data-testid="total-tokens">
                    {metrics.data ? formatCount(totals.tokens) : "…"}
                  </dd>
                </div>
              </dl>
            </div>
            {metrics.isError && !metrics.data ? (
              <div role="alert" className="rounded-xl border p-5 text-sm text-destructive">
                Could not read the metrics: {errorMessage(metrics.error)}
              </div>
            ) : metrics.data ? (
              <MetricsCharts points={points} extra={<TrainingThroughputChart windowMinutes={WINDOW_MINUTES} />} />
            ) : (
              <Skeleton className="h-64 w-full rounded-xl" />
            )}
          </section>
        </div>
      )}
    </div>
  );
}
