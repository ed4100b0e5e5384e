/** The trainer's throughput beside the inference charts: tokens trained per second and jobs running, in
 * the 10 s buckets of GET /v1/training/metrics, polled every 5 s. A hub without a trainer gets a note
 * in the chart's place, not an error. */
import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";

import { api, call, errorMessage } from "@/api/client";
import { ApiError } from "@/api/errors";
import { LineChartFigure } from "@/components/serving/MetricsCharts";
import { Skeleton } from "@/components/ui/skeleton";
import { trainingPoints } from "@/pages/serving/servingLogic";

const SERIES = [
  { key: "tokensPerSecond", name: "tokens/s", color: "var(--chart-2)" },
  { key: "runningJobs", name: "running jobs", color: "var(--chart-4)", right: true },
];

/** The gateway answers 404/5xx for a service that is not part of this stack or not up. */
function notRunning(error: unknown): boolean {
  return !(error instanceof ApiError) || error.httpStatus === 404 || error.httpStatus >= 500;
}

export function TrainingThroughputChart({ windowMinutes }: { windowMinutes: number }) {
  const metrics = useQuery({
    queryKey: ["training", "metrics", windowMinutes],
    queryFn: () => call(api.GET("/v1/training/metrics", { params: { query: { windowMinutes } } })),
    retry: false,
    refetchInterval: 5_000,
  });
  const points = useMemo(() => trainingPoints(metrics.data), [metrics.data]);

  if (metrics.data) {
    return <LineChartFigure id="training" title="Training throughput" unit="tokens/s · jobs" series={SERIES} points={points} />;
  }
  if (metrics.isError) {
    const down = notRunning(metrics.error);
    return (
      <figure
        data-testid="chart-training"
        aria-labelledby="chart-training-title"
        className="flex h-64 flex-col gap-2 rounded-xl border border-dashed bg-card p-4"
      >
        <figcaption>
          <h3 id="chart-training-title" className="text-sm font-medium">
            Training throughput
          </h3>
        </figcaption>
        <div
          role={down ? "status" : "alert"}
          className={`flex flex-1 flex-col items-center justify-center gap-1 text-center text-sm ${down ? "text-muted-foreground" : "text-destructive"}`}
        >
          <p className={down ? "font-medium text-foreground" : undefined}>
            {down ? "Trainer not running" : "Could not read the training metrics"}
          </p>
          <p className="text-xs" title={errorMessage(metrics.error)}>
            {down ? "Start python -m trainer_svc to see its throughput here." : errorMessage(metrics.error)}
          </p>
        </div>
      </figure>
    );
  }
  return <Skeleton className="h-64 w-full rounded-xl" />;
}
