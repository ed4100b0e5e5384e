/**
 * Training jobs: filter by state, progress and ETA of running jobs, queue
 * position of queued ones, who started each, and links to the model, dataset and
 * the version a job produced. Tick two or more to compare them. The trainer has
 * no stream of job changes, so while any listed job is queued or running the
 * list is read again every two seconds (job pages follow their job's stream).
 */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { ChevronLeft, ChevronRight, GitCompare } from "lucide-react";
import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import { FormError } from "@/components/FormField";
import { Timestamp } from "@/components/models/Timestamp";
import { PageHeader } from "@/components/PageHeader";
import { JobStateBadge, ProgressRing } from "@/components/training/JobStateBadge";
import { NewJobDialog } from "@/components/training/NewJobDialog";
import { useNow } from "@/components/training/useNow";
import {
  etaSeconds,
  formatDuration,
  fraction,
  JOB_STATES,
  type JobStateName,
  modelName,
  num,
  stateEnum,
  stateName,
  type TrainingJob,
  versionLink,
} from "@/components/training/trainingLogic";
import { Button } from "@/components/ui/button";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { cn } from "@/lib/utils";

const PAGE_SIZE = 50;

export default function TrainingPage() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const state = (JOB_STATES as readonly string[]).includes(params.get("state") ?? "") ? (params.get("state") as JobStateName) : undefined;
  const [tokens, setTokens] = useState<string[]>([]);
  const page = tokens.at(-1);
  const [selected, setSelected] = useState<string[]>([]);

  const list = useQuery({
    queryKey: ["training-jobs", "list", state ?? "", page ?? ""],
    queryFn: () =>
      call(api.GET("/v1/training/jobs", { params: { query: { state: state ? stateEnum(state) : undefined, pageSize: PAGE_SIZE, pageToken: page } } })),
    placeholderData: keepPreviousData,
    refetchInterval: (query) =>
      query.state.data?.jobs?.some((j) => ["queued", "running"].includes(stateName(j.state))) ? 2000 : false,
  });
  // Queue position: the queued jobs in the order they will be taken (oldest first).
  const queued = useQuery({
    queryKey: ["training-jobs", "queued"],
    queryFn: () => call(api.GET("/v1/training/jobs", { params: { query: { state: "TRAINING_JOB_STATE_QUEUED", pageSize: 500 } } })),
    refetchInterval: (query) => ((query.state.data?.jobs?.length ?? 0) > 0 ? 2000 : false),
  });
  const queueOrder = [...(queued.data?.jobs ?? [])].reverse().map((j) => j.id);

  const jobs = list.data?.jobs ?? [];
  const total = list.data?.totalSize ?? 0;
  const setState = (next: JobStateName | undefined) => {
    setTokens([]);
    setParams(next ? { state: next } : {});
  };
  const toggle = (id: string) => setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s, id]));

  return (
    <div>
      <PageHeader
        title="Training"
        description={list.data ? `${total} ${total === 1 ? "job" : "jobs"}${state ? ` ${state}` : ""}` : "Fine-tuning jobs and their progress."}
        actions={
          <>
            <Button
              variant="outline"
              disabled={selected.length < 2}
              onClick={() => void navigate(`/training/compare?ids=${selected.map(encodeURIComponent).join(",")}`)}
            >
              <GitCompare /> Compare{selected.length ? ` (${selected.length})` : ""}
            </Button>
            <NewJobDialog />
          </>
        }
      />
      <div role="group" aria-label="Filter by state" className="mb-3 flex flex-wrap gap-2">
        {[undefined, ...JOB_STATES].map((s) => (
          <Button key={s ?? "all"} size="sm" variant={state === s ? "default" : "outline"} aria-pressed={state === s} onClick={() => setState(s)}>
            {s ?? "all"}
          </Button>
        ))}
      </div>
      {list.isError && <FormError message={`Could not list training jobs: ${errorMessage(list.error)}`} />}
      <div className="rounded-lg border bg-card" aria-busy={list.isFetching}>
        <Table>
          <TableHeader>
            <TableRow>
              <TableHead className="w-8">
                <span className="sr-only">Select</span>
              </TableHead>
              <TableHead>Job</TableHead>
              <TableHead>State</TableHead>
              <TableHead>Progress</TableHead>
              <TableHead>Model</TableHead>
              <TableHead>Dataset</TableHead>
              <TableHead>Produced</TableHead>
              <TableHead>Created by</TableHead>
              <TableHead>Created</TableHead>
            </TableRow>
          </TableHeader>
          <TableBody>
            {list.isPending &&
              Array.from({ length: 4 }, (_, i) => (
                <TableRow key={i}>
                  {Array.from({ length: 9 }, (_, j) => (
                    <TableCell key={j}>
                      <Skeleton className="h-4 w-full" />
                    </TableCell>
                  ))}
                </TableRow>
              ))}
            {jobs.map((job) => (
              <JobRow
                key={job.id}
                job={job}
                selected={selected.includes(job.id ?? "")}
                onToggle={() => toggle(job.id ?? "")}
                queuePosition={queueOrder.indexOf(job.id) + 1}
              />
            ))}
            {list.isSuccess && jobs.length === 0 && (
              <TableRow>
                <TableCell colSpan={9} className="py-12 text-center">
                  <div className="grid justify-items-center gap-2">
                    {state ? (
                      <>
                        <p className="font-medium">No {state} jobs.</p>
                        <Button variant="outline" size="sm" onClick={() => setState(undefined)}>
                          Show all jobs
                        </Button>
                      </>
                    ) : (
                      <>
                        <p className="font-medium">No training jobs yet — start one.</p>
                        <p className="text-sm text-muted-foreground">A job fine-tunes a model version on a dataset and registers the adapter as a new version.</p>
                        <NewJobDialog label="Start a training job" />
                      </>
                    )}
                  </div>
                </TableCell>
              </TableRow>
            )}
          </TableBody>
        </Table>
      </div>
      <nav aria-label="Pages" className="mt-3 flex items-center justify-between gap-2 text-sm text-muted-foreground">
        <span>
          Page {tokens.length + 1}
          {list.data ? ` · ${jobs.length} of ${total}` : ""}
        </span>
        <div className="flex gap-2">
          <Button variant="outline" size="sm" disabled={!tokens.length} onClick={() => setTokens((t) => t.slice(0, -1))}>
            <ChevronLeft /> Previous
          </Button>
          <Button
            variant="outline"
            size="sm"
            disabled={!list.data?.nextPageToken || list.isPlaceholderData}
            onClick={() => list.data?.nextPageToken && setTokens((t) => [...t, list.data.nextPageToken ?? ""])}
          >
            Next <ChevronRight />
          </Button>
        </div>
      </nav>
    </div>
  );
}

function JobRow({ job, selected, onToggle, queuePosition }: { job: TrainingJob; selected: boolean; onToggle: () => void; queuePosition: number }) {
  const now = useNow();
  const id = job.id ?? "";
  const state = stateName(job.state);
  const produced = versionLink(job.outputVersion);
  const model = modelName(job.model);
  const step = num(job.step);
  const total = num(job.totalSteps);
  const eta = state === "running" ? etaSeconds(step, total, job.startTime, now) : undefined;
  return (
    <TableRow data-state={selected ? "selected" : undefined} className={cn(selected && "bg-muted/50")}>
      <TableCell>
        <input type="checkbox" className="size-4 accent-primary" aria-label={`Select job ${id.slice(0, 8)}`} checked={selected} onChange={onToggle} />
      </TableCell>
      <TableCell>
        <Link to={`/training/${id}`} className="font-mono text-primary underline-offset-4 hover:underline" title={id}>
          {id.slice(0, 8)}
        </Link>
      </TableCell>
      <TableCell>
        <JobStateBadge state={job.state} cancelRequested={job.cancelRequested} />
      </TableCell>
      <TableCell className="whitespace-nowrap tabular-nums">
        {state === "queued" ? (
          <span>{queuePosition > 0 ? `#${queuePosition} in queue` : "queued"}</span>
        ) : (
          <span className="inline-flex items-center gap-2">
            <ProgressRing value={total ? step / total : 0} label={`${Math.round(fraction(job) * 100)}% done`} />
            <span>
              {step} / {total || "?"}
            </span>
            {state === "running" && <span className="text-muted-foreground">ETA {formatDuration(eta)}</span>}
          </span>
        )}
      </TableCell>
      <TableCell className="font-mono text-xs">
        <Link to={`/models/${encodeURIComponent(model)}`} className="underline-offset-4 hover:underline" title={job.baseVersion}>
          {job.model}
        </Link>
      </TableCell>
      <TableCell className="font-mono text-xs">
        <Link to={`/datasets/${encodeURIComponent(job.dataset ?? "")}`} className="underline-offset-4 hover:underline">
          {job.dataset}
        </Link>
      </TableCell>
      <TableCell className="font-mono text-xs">
        {produced ? (
          <Link to={produced.to} className="underline-offset-4 hover:underline">
            {produced.label}
          </Link>
        ) : (
          <span className="text-muted-foreground">—</span>
        )}
      </TableCell>
      <TableCell>{job.createdBy || <span className="text-muted-foreground">—</span>}</TableCell>
      <TableCell>
        <Timestamp value={job.createTime} relative />
      </TableCell>
    </TableRow>
  );
}
