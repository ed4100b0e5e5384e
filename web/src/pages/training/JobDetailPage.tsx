/**
 * One training job: its live loss curve (from the watch stream, which replays
 * every reported step from the start and then follows), its figures, checkpoints,
 * timeline, configuration, and the cancel / resume / retry actions the job's state
 * allows.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Ban, Play, RotateCcw } from "lucide-react";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import { ApiError } from "@/api/errors";
import { CopyButton } from "@/components/CopyButton";
import { FormError } from "@/components/FormField";
import { Timestamp } from "@/components/models/Timestamp";
import { PageHeader } from "@/components/PageHeader";
import { JobStateBadge } from "@/components/training/JobStateBadge";
import { LossChart } from "@/components/training/LossChart";
import {
  allowedActions,
  CONFIG_FIELDS,
  configValue,
  etaSeconds,
  formatDuration,
  modelName,
  num,
  stateName,
  type TrainingJob,
  versionLink,
} from "@/components/training/trainingLogic";
import { useJobWatch } from "@/components/training/useJobWatch";
import { useNow } from "@/components/training/useNow";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";

export default function JobDetailPage() {
  const { id = "" } = useParams();
  const [generation, setGeneration] = useState(0);
  const query = useQuery({
    queryKey: ["training-job", id],
    queryFn: () => call(api.GET("/v1/training/jobs/{id}", { params: { path: { id } } })),
  });
  const watch = useJobWatch(id, generation);
  const now = useNow();
  const job = query.data?.job;

  if (query.isPending) {
    return (
      <div className="grid gap-4">
        <Skeleton className="h-8 w-64" />
        <Skeleton className="h-80 w-full" />
      </div>
    );
  }
  if (query.isError || !job) {
    const missing = query.error instanceof ApiError && query.error.httpStatus === 404;
    return (
      <div>
        <PageHeader title="Training job" />
        <FormError message={missing ? `There is no training job ${id}.` : `Could not read the job: ${errorMessage(query.error)}`} />
        <p className="mt-4">
          <Link to="/training" className="text-primary underline-offset-4 hover:underline">
            All training jobs
          </Link>
        </p>
      </div>
    );
  }

  const state = stateName(job.state);
  const produced = versionLink(job.outputVersion);
  const latest = watch.latest;
  const step = Math.max(num(job.step), num(latest?.step));
  const total = num(job.totalSteps);
  const eta = state === "running" ? etaSeconds(step, total, job.startTime, now) : undefined;
  const validationCount = watch.points.filter((p) => p.validationLoss !== undefined).length;
  const trainedCount = watch.points.filter((p) => p.loss !== undefined).length;

  return (
    <div className="grid gap-6">
      <PageHeader
        title={
          <span className="flex flex-wrap items-center gap-3">
            <span>
              Job <span className="font-mono">{id.slice(0, 8)}</span>
            </span>
            <JobStateBadge state={job.state} cancelRequested={job.cancelRequested} />
          </span>
        }
        description={
          <>
            Fine-tunes{" "}
            <Link className="font-mono text-primary underline-offset-4 hover:underline" to={`/models/${encodeURIComponent(modelName(job.model))}`}>
              {job.model}
            </Link>
            {job.baseVersion && job.baseVersion !== job.model ? <span className="font-mono"> ({job.baseVersion})</span> : null} on{" "}
            <Link className="font-mono text-primary underline-offset-4 hover:underline" to={`/datasets/${encodeURIComponent(job.dataset ?? "")}`}>
              {job.dataset}
            </Link>
          </>
        }
        actions={<JobActions job={job} onResumed={() => setGeneration((g) => g + 1)} />}
      />
      {state === "failed" && job.failureReason && <FormError message={`Failed: ${job.failureReason}`} />}
      {produced && (
        <div className="rounded-md border border-success/40 px-3 py-2 text-sm">
          Registered as{" "}
          <Link to={produced.to} className="font-mono font-medium text-primary underline-offset-4 hover:underline">
            {produced.label}
          </Link>
        </div>
      )}
      <dl className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
        <Figure label="Step">
          <span data-testid="job-step">
            {step} / {total || "?"}
          </span>
        </Figure>
        <Figure label="ETA">{state === "running" ? formatDuration(eta) : "—"}</Figure>
        <Figure label="Loss">{latest?.loss !== undefined ? latest.loss.toFixed(4) : job.lastLoss ? job.lastLoss.toFixed(4) : "—"}</Figure>
        <Figure label="Tokens/s">{latest?.tokensPerSecond ? latest.tokensPerSecond.toFixed(0) : "—"}</Figure>
        <Figure label="Peak memory">{latest?.peakMemoryGb ? `${latest.peakMemoryGb.toFixed(2)} GB` : "—"}</Figure>
        <Figure label="Learning rate">{latest?.learningRate ? latest.learningRate.toExponential(2) : "—"}</Figure>
      </dl>
      <Card>
        <CardHeader className="flex flex-row items-center justify-between gap-2">
          <h2 className="leading-none font-semibold">Loss</h2>
          <p className="text-sm text-muted-foreground" aria-live="polite">
            <span data-testid="loss-points">
              {trainedCount} {trainedCount === 1 ? "step" : "steps"}
            </span>
            {validationCount ? ` · ${validationCount} validation` : ""}
            {watch.live && (state === "running" || state === "queued") ? (
              <Badge variant="outline" className="ml-2">
                live
              </Badge>
            ) : null}
          </p>
        </CardHeader>
        <CardContent>
          {watch.points.length ? (
            <LossChart series={[{ name: "training", points: watch.points }]} />
          ) : (
            <p className="py-16 text-center text-sm text-muted-foreground">
              {state === "queued" ? "Waiting for a worker; the curve starts with the first reported step." : "No steps reported yet."}
            </p>
          )}
          {watch.error !== undefined && <FormError message={`The live stream dropped (${errorMessage(watch.error)}); reconnecting…`} />}
        </CardContent>
      </Card>
      <div className="grid gap-6 lg:grid-cols-2">
        <Timeline job={job} />
        <Checkpoints job={job} />
      </div>
      <Card>
        <CardHeader>
          <h2 className="leading-none font-semibold">Configuration</h2>
        </CardHeader>
        <CardContent>
          <dl className="grid grid-cols-2 gap-x-6 gap-y-1 text-sm sm:grid-cols-3">
            {CONFIG_FIELDS.map(({ key, label }) => (
              <div key={key} className="flex justify-between gap-2 border-b py-1">
                <dt className="text-muted-foreground">{label}</dt>
                <dd className="font-mono">{configValue(job.config, key)}</dd>
              </div>
            ))}
          </dl>
        </CardContent>
      </Card>
    </div>
  );
}

function Figure({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div className="rounded-lg border bg-card px-3 py-2">
      <dt className="text-xs text-muted-foreground">{label}</dt>
      <dd className="text-lg font-semibold tabular-nums">{children}</dd>
    </div>
  );
}

function JobActions({ job, onResumed }: { job: TrainingJob; onResumed: () => void }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const id = job.id ?? "";
  const allowed = allowedActions(job);
  const done = async (next: TrainingJob | undefined) => {
    if (next) queryClient.setQueryData(["training-job", next.id], { job: next });
    await queryClient.invalidateQueries({ queryKey: ["training-jobs"] });
  };
  const cancel = useMutation({
    mutationFn: () => call(api.POST("/v1/training/jobs/{id}:cancel", { params: { path: { id } }, body: {} })),
    onSuccess: (data) => done(data.job),
  });
  const resume = useMutation({
    mutationFn: () => call(api.POST("/v1/training/jobs/{id}:resume", { params: { path: { id } }, body: {} })),
    onSuccess: async (data) => {
      await done(data.job);
      onResumed();
    },
  });
  const retry = useMutation({
    mutationFn: () => call(api.POST("/v1/training/jobs/{id}:retry", { params: { path: { id } }, body: {} })),
    onSuccess: async (data) => {
      await done(data.job);
      if (data.job?.id) void navigate(`/training/${data.job.id}`);
    },
  });
  const error = cancel.error ?? resume.error ?? retry.error;
  const busy = cancel.isPending || resume.isPending || retry.isPending;
  return (
    <div className="grid justify-items-end gap-2">
      <div className="flex gap-2">
        <Button variant="outline" disabled={!allowed.cancel || busy} onClick={() => cancel.mutate()}>
          <Ban /> Cancel
        </Button>
        <Button
          variant="outline"
          disabled={!allowed.resume || busy}
          onClick={() => resume.mutate()}
          title={stateName(job.state) === "cancelled" && !allowed.resume ? "No checkpoint to resume from: retry instead" : undefined}
        >
          <Play /> Resume
        </Button>
        <Button variant="outline" disabled={!allowed.retry || busy} onClick={() => retry.mutate()}>
          <RotateCcw /> Retry
        </Button>
      </div>
      {error ? <FormError message={errorMessage(error)} /> : null}
    </div>
  );
}

function Timeline({ job }: { job: TrainingJob }) {
  const state = stateName(job.state);
  const entries: { label: string; time?: string; detail?: React.ReactNode }[] = [{ label: "Queued", time: job.createTime, detail: job.createdBy ? `by ${job.createdBy}` : undefined }];
  if (job.retriedFrom)
    entries[0] = { ...entries[0], label: "Queued", detail: (
      <>
        {job.createdBy ? `by ${job.createdBy}` : ""} retrying{" "}
        <Link className="font-mono text-primary underline-offset-4 hover:underline" to={`/training/${job.retriedFrom}`}>
          {job.retriedFrom.slice(0, 8)}
        </Link>
      </>
    ) };
  if (job.startTime) entries.push({ label: "Started", time: job.startTime, detail: job.worker ? `on ${job.worker}` : undefined });
  for (const c of job.checkpoints ?? []) entries.push({ label: `Checkpoint at step ${num(c.step)}`, time: c.saveTime, detail: c.validationLoss ? `validation loss ${c.validationLoss.toFixed(4)}` : undefined });
  if (job.handoffs)
    entries.push({
      label: `Handed back ${job.handoffs === 1 ? "once" : `${job.handoffs} times`}`,
      detail: "a worker shut down, checkpointed and put the job back on the queue",
    });
  if (state === "queued" && job.attempt) entries.push({ label: "Back in the queue", detail: job.failureReason || "resumes from its last checkpoint" });
  if (job.cancelRequested && state === "running") entries.push({ label: "Cancel requested" });
  if (job.endTime) entries.push({ label: state === "succeeded" ? "Succeeded" : state === "failed" ? "Failed" : "Cancelled", time: job.endTime });
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Timeline</h2>
      </CardHeader>
      <CardContent className="grid gap-3 text-sm">
        <ol className="grid gap-2 border-l pl-4">
          {entries.map((e, i) => (
            <li key={i}>
              <span className="font-medium">{e.label}</span> {e.time && <Timestamp value={e.time} />}
              {e.detail && <span className="text-muted-foreground"> · {e.detail}</span>}
            </li>
          ))}
        </ol>
        <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1">
          <dt className="text-muted-foreground">Attempts</dt>
          <dd>
            {job.attempt ?? 0}
            {job.handoffs ? <span className="text-muted-foreground"> ({job.handoffs} handed back)</span> : null}
          </dd>
          <dt className="text-muted-foreground">Worker</dt>
          <dd className="font-mono">{job.worker || "—"}</dd>
          <dt className="text-muted-foreground">Output model</dt>
          <dd className="font-mono">{job.outputModel || "—"}</dd>
          <dt className="text-muted-foreground">MLflow run</dt>
          <dd className="font-mono">
            {job.mlflowRunId ? (
              <span className="inline-flex items-center gap-1">
                {job.mlflowRunId} <CopyButton value={job.mlflowRunId} label="Copy MLflow run id" />
              </span>
            ) : (
              <span className="text-muted-foreground">{job.mlflowStatus || "—"}</span>
            )}
          </dd>
          <dt className="text-muted-foreground">Dataset sha256</dt>
          <dd className="truncate font-mono text-xs" title={job.datasetSha256}>
            {job.datasetSha256 || "—"}
          </dd>
        </dl>
      </CardContent>
    </Card>
  );
}

function Checkpoints({ job }: { job: TrainingJob }) {
  const checkpoints = job.checkpoints ?? [];
  const best = num(job.bestCheckpoint?.step);
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Checkpoints</h2>
      </CardHeader>
      <CardContent>
        {checkpoints.length ? (
          <Table className="table-fixed">
            <TableHeader>
              <TableRow>
                <TableHead className="w-28 text-right">Step</TableHead>
                <TableHead className="w-32 text-right">Validation loss</TableHead>
                <TableHead>Saved</TableHead>
                <TableHead className="w-1/3">Path</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {checkpoints.map((c) => (
                <TableRow key={`${c.step}-${c.path}`}>
                  <TableCell className="text-right tabular-nums">
                    {num(c.step)}
                    {best && num(c.step) === best ? (
                      <Badge variant="success" className="ml-2">
                        best
                      </Badge>
                    ) : null}
                  </TableCell>
                  <TableCell className="text-right tabular-nums">{c.validationLoss ? c.validationLoss.toFixed(4) : "—"}</TableCell>
                  <TableCell className="truncate">
                    <Timestamp value={c.saveTime} />
                  </TableCell>
                  <TableCell className="truncate font-mono text-xs" title={c.path}>
                    {c.path}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        ) : (
          <p className="text-sm text-muted-foreground">No checkpoints yet (one is saved every {configValue(job.config, "saveEvery")} steps).</p>
        )}
      </CardContent>
    </Card>
  );
}
