/** The hub at a glance: counts that link to their pages, and the live activity feed. */
import { useQueries, useQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { Link } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import { ApiError } from "@/api/errors";
import type { TrainingJob } from "@/api/types";
import { PageHeader } from "@/components/PageHeader";
import { Skeleton } from "@/components/ui/skeleton";
import { ActivityFeed } from "@/pages/overview/ActivityFeed";
import { formatCount } from "@/lib/format";

type JobState = NonNullable<TrainingJob["state"]>;

const JOB_STATES: { state: JobState; label: string }[] = [
  { state: "TRAINING_JOB_STATE_QUEUED", label: "queued" },
  { state: "TRAINING_JOB_STATE_RUNNING", label: "running" },
  { state: "TRAINING_JOB_STATE_SUCCEEDED", label: "succeeded" },
  { state: "TRAINING_JOB_STATE_FAILED", label: "failed" },
  { state: "TRAINING_JOB_STATE_CANCELLED", label: "cancelled" },
];

/** A service that is not part of this stack answers 404/5xx through the gateway. */
function notRunning(error: unknown): boolean {
  return !(error instanceof ApiError) || error.httpStatus === 404 || error.httpStatus >= 500;
}

function Tile({ to, title, children, testId }: { to: string; title: string; children: ReactNode; testId: string }) {
  return (
    <Link
      to={to}
      data-testid={testId}
      className="group flex flex-col gap-2 rounded-xl border bg-card p-5 text-card-foreground shadow-xs transition-colors outline-none hover:bg-accent/50 focus-visible:ring-[3px] focus-visible:ring-ring/50"
    >
      <h2 className="text-sm font-medium text-muted-foreground group-hover:text-foreground">{title}</h2>
      {children}
    </Link>
  );
}

function Count({ value, loading }: { value: string | number | undefined; loading: boolean }) {
  if (loading) return <Skeleton className="h-8 w-16" />;
  return (
    <span className="text-3xl font-semibold tabular-nums" data-testid="count">
      {formatCount(value)}
    </span>
  );;
}

function Unavailable({ text, error }: { text: string; error: unknown }) {
  return (
    <span className="text-sm text-muted-foreground" title={errorMessage(error)}>
      {text}
    </span>
  );
}

export default function Overview() {
  const stats = useQuery({
    queryKey: ["registry-stats"],
    queryFn: () => call(api.GET("/v1/registry/stats")),
  });
  const jobs = useQueries({
    queries: JOB_STATES.map(({ state }) => ({
      queryKey: ["training", "count", state],
      queryFn: () => call(api.GET("/v1/training/jobs", { params: { query: { state, pageSize: 1 } } })),
      refetchInterval: 10_000,
    })),
  });
  const loaded = useQuery({
    queryKey: ["inference", "loaded"],
    queryFn: () => call(api.GET("/v1/inference/models")),
    retry: false,
    refetchInterval: 15_000,
  });
  const jobsError = jobs.find((q) => q.isError)?.error;

  return (
    <div>
      <PageHeader title="Overview" description="What the hub holds and what is happening in it." />
      <div className="grid gap-6">
        {stats.isError && (
          <div role="alert" className="rounded-md border border-destructive/50 p-4 text-sm text-destructive">
            Could not read the registry's counts: {errorMessage(stats.error)}
          </div>
        )}

        <section aria-label="Counts" className="grid gap-4 sm:grid-cols-2 lg:grid-cols-5">
          <Tile to="/models" title="Models" testId="tile-models">
            <Count value={stats.data?.modelCount} loading={stats.isPending} />
          </Tile>
          <Tile to="/models" title="Versions" testId="tile-versions">
            <Count value={stats.data?.versionCount} loading={stats.isPending} />
            {stats.data && (
              <span className="text-xs text-muted-foreground">
                {formatCount(stats.data.aliasCount)} alias{Number(stats.data.aliasCount ?? 0) === 1 ? "" : "es"}
              </span>
            )}
          </Tile>
          <Tile to="/datasets" title="Datasets" testId="tile-datasets">
            <Count value={stats.data?.datasetCount} loading={stats.isPending} />
          </Tile>
          <Tile to="/training" title="Training jobs" testId="tile-training">
            {jobsError ? (
              <Unavailable text={notRunning(jobsError) ? "trainer not running" : errorMessage(jobsError)} error={jobsError} />
            ) : (
              <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-0.5 text-sm">
                {JOB_STATES.map(({ state, label }, i) => (
                  <div key={state} className="contents" data-testid={`jobs-${label}`}>
                    <dt className="text-muted-foreground">{label}</dt>
                    <dd className="text-right font-medium tabular-nums" data-testid="count">
                      {jobs[i]?.isPending ? "…" : formatCount(jobs[i]?.data?.totalSize)}
                    </dd>
                  </div>
                ))}
              </dl>
            )}
          </Tile>
          <Tile to="/serving" title="Loaded versions" testId="tile-loaded">
            {loaded.isError ? (
              <Unavailable
                text={notRunning(loaded.error) ? "inference not running" : errorMessage(loaded.error)}
                error={loaded.error}
              />
            ) : (
              <>
                <Count value={loaded.data?.models?.length ?? 0} loading={loaded.isPending} />
                {loaded.data?.models?.length ? (
                  <span className="truncate text-xs text-muted-foreground">
                    {loaded.data.models.map((m) => m.modelVersion).join(", ")}
                  </span>
                ) : null}
              </>
            )}
          </Tile>
        </section>

        <ActivityFeed />
      </div>
    </div>
  );
}
