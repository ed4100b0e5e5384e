/**
 * Two or more jobs side by side: their configurations (fields that differ are
 * marked "≠" and in bold, not by colour alone) and their loss curves on one chart.
 * Each curve comes from the job's watch stream (a replay of every reported step).
 */
import { useQueries } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import { FormError } from "@/components/FormField";
import { PageHeader } from "@/components/PageHeader";
import { JobStateBadge } from "@/components/training/JobStateBadge";
import { LossChart, type LossSeries } from "@/components/training/LossChart";
import { CONFIG_FIELDS, configValue, differingKeys, versionLink } from "@/components/training/trainingLogic";
import { useJobWatch } from "@/components/training/useJobWatch";
import { Card, CardContent, CardHeader } from "@/components/ui/card";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { cn } from "@/lib/utils";

const MAX_JOBS = 5;

export default function CompareJobsPage() {
  const [params] = useSearchParams();
  const ids = (params.get("ids") ?? "").split(",").map((s) => s.trim()).filter(Boolean).slice(0, MAX_JOBS);
  const jobs = useQueries({
    queries: ids.map((id) => ({
      queryKey: ["training-job", id],
      queryFn: () => call(api.GET("/v1/training/jobs/{id}", { params: { path: { id } } })),
    })),
  });

  if (ids.length < 2) {
    return (
      <div>
        <PageHeader title="Compare training jobs" />
        <p className="text-sm text-muted-foreground">
          Pick two or more jobs on the{" "}
          <Link to="/training" className="text-primary underline-offset-4 hover:underline">
            training page
          </Link>{" "}
          to compare them.
        </p>
      </div>
    );
  }
  const configs = jobs.map((q) => q.data?.job?.config);
  const differ = differingKeys(configs);

  return (
    <div className="grid gap-6">
      <PageHeader
        title="Compare training jobs"
        description={`${ids.length} jobs · ${differ.size} configuration ${differ.size === 1 ? "field differs" : "fields differ"}`}
      />
      {jobs.map((q, i) => (q.isError ? <FormError key={ids[i]} message={`Job ${ids[i]}: ${errorMessage(q.error)}`} /> : null))}
      <Card>
        <CardHeader>
          <h2 className="leading-none font-semibold">Loss curves</h2>
        </CardHeader>
        <CardContent>
          <Curves ids={ids} />
        </CardContent>
      </Card>
      <Card>
        <CardHeader>
          <h2 className="leading-none font-semibold">Configurations</h2>
        </CardHeader>
        <CardContent>
          <Table>
            <TableHeader>
              <TableRow>
                <TableHead>Field</TableHead>
                {ids.map((id, i) => (
                  <TableHead key={id}>
                    <Link to={`/training/${id}`} className="font-mono text-primary underline-offset-4 hover:underline">
                      {id.slice(0, 8)}
                    </Link>{" "}
                    <JobStateBadge state={jobs[i]?.data?.job?.state} />
                  </TableHead>
                ))}
              </TableRow>
            </TableHeader>
            <TableBody>
              <TableRow>
                <TableCell className="text-muted-foreground">Model</TableCell>
                {jobs.map((q, i) => (
                  <TableCell key={ids[i]} className="font-mono text-xs">
                    {q.data?.job?.baseVersion ?? "…"}
                  </TableCell>
                ))}
              </TableRow>
              <TableRow>
                <TableCell className="text-muted-foreground">Dataset</TableCell>
                {jobs.map((q, i) => (
                  <TableCell key={ids[i]} className="font-mono text-xs">
                    {q.data?.job?.dataset ?? "…"}
                  </TableCell>
                ))}
              </TableRow>
              <TableRow>
                <TableCell className="text-muted-foreground">Produced</TableCell>
                {jobs.map((q, i) => {
                  const link = versionLink(q.data?.job?.outputVersion);
                  return (
                    <TableCell key={ids[i]} className="font-mono text-xs">
                      {link ? (
                        <Link to={link.to} className="text-primary underline-offset-4 hover:underline">
                          {link.label}
                        </Link>
                      ) : (
                        "—"
                      )}
                    </TableCell>
                  );
                })}
              </TableRow>
              {CONFIG_FIELDS.map(({ key, label }) => {
                const differs = differ.has(key);
                return (
                  <TableRow key={key} data-differs={differs || undefined} className={cn(differs && "bg-warning/10")}>
                    <TableCell className={cn(differs ? "font-semibold" : "text-muted-foreground")}>
                      {differs && (
                        <span aria-hidden="true" className="mr-1">
                          ≠
                        </span>
                      )}
                      {label}
                      {differs && <span className="sr-only"> (differs)</span>}
                    </TableCell>
                    {configs.map((c, i) => (
                      <TableCell key={ids[i]} className={cn("font-mono text-xs", differs && "font-semibold")}>
                        {c ? configValue(c, key) : "…"}
                      </TableCell>
                    ))}
                  </TableRow>
                );
              })}
            </TableBody>
          </Table>
        </CardContent>
      </Card>
    </div>
  );
}

/** One watch per job (hooks in a fixed order: the ids come from the URL and a change remounts). */
function Curves({ ids }: { ids: string[] }) {
  return <CurvesOf key={ids.join(",")} ids={ids} />;
}

function CurvesOf({ ids }: { ids: string[] }) {
  const series: LossSeries[] = [];
  for (const id of ids) {
    // eslint-disable-next-line react-hooks/rules-of-hooks -- the list is fixed for this component's life (keyed on it)
    const watch = useJobWatch(id, 0);
    series.push({ name: id.slice(0, 8), points: watch.points });
  }
  const count = series.reduce((n, s) => n + s.points.length, 0);
  if (!count) return <p className="py-16 text-center text-sm text-muted-foreground">No steps reported yet.</p>;
  return <LossChart series={series} />;
}
