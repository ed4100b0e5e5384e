/**
 * Two versions of a model side by side: what differs in how they were made
 * (lineage, training config, libraries), how they score (metrics with B − A), and
 * which files changed. Differing rows are tinted and also say "differs" in text.
 */
import { useQuery } from "@tanstack/react-query";
import { ArrowLeftRight, ChevronRight } from "lucide-react";
import type { ReactNode } from "react";
import { Link, useParams, useSearchParams } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import type { GetLineageResponse, ModelVersion } from "@/api/types";
import { KindBadge, LocalTime, StatusBadge } from "@/components/lineage/parts";
import { PageHeader } from "@/components/PageHeader";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader } from "@/components/ui/card";
import { Label } from "@/components/ui/label";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { type DiffRow, type DiffStatus, diffFiles, diffMetrics, diffRecords, formatDelta, formatValue, statusText } from "@/lib/diff";
import { formatBytes, shortSha } from "@/lib/format";
import { versionHref } from "@/lib/lineage";

const MAX_PAGES = 50;

async function listAllVersions(name: string): Promise<ModelVersion[]> {
  const versions: ModelVersion[] = [];
  let pageToken: string | undefined;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const answer = await call(api.GET("/v1/models/{name}/versions", { params: { path: { name }, query: { pageSize: 100, pageToken } } }));
    versions.push(...(answer.versions ?? []));
    pageToken = answer.nextPageToken;
    if (!pageToken) break;
  }
  return versions.sort((x, y) => Number(y.version ?? 0) - Number(x.version ?? 0));
}

function useVersion(name: string, version: string) {
  const enabled = Boolean(version);
  const detail = useQuery({
    queryKey: ["model", name, "version", version],
    queryFn: () => call(api.GET("/v1/models/{name}/versions/{version}", { params: { path: { name, version } } })),
    enabled,
  });
  const lineage = useQuery({
    queryKey: ["model", name, "lineage", version],
    queryFn: () => call(api.GET("/v1/models/{name}/versions/{version}/lineage", { params: { path: { name, version } } })),
    enabled,
  });
  return { detail, lineage };
}

export default function CompareVersionsPage() {
  const { name = "" } = useParams();
  const [search, setSearch] = useSearchParams();
  const a = search.get("a") ?? "";
  const b = search.get("b") ?? "";
  const versions = useQuery({ queryKey: ["model", name, "versions"], queryFn: () => listAllVersions(name) });
  const left = useVersion(name, a);
  const right = useVersion(name, b);

  const choose = (side: "a" | "b", value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(side, value);
    else next.delete(side);
    setSearch(next, { replace: true });
  };
  const swap = () => {
    const next = new URLSearchParams(search);
    next.set("a", b);
    next.set("b", a);
    setSearch(next, { replace: true });
  };

  const options = versions.data ?? [];
  const picker = (side: "a" | "b", value: string) => (
    <div className="flex flex-col gap-1.5">
      <Label htmlFor={`compare-${side}`}>Version {side.toUpperCase()}</Label>
      <select
        id={`compare-${side}`}
        value={value}
        onChange={(e) => choose(side, e.target.value)}
        className="h-9 min-w-44 rounded-md border border-input bg-background px-2 text-sm shadow-xs outline-none focus-visible:ring-[3px] focus-visible:ring-ring/50"
        disabled={versions.isPending}
      >
        <option value="">Choose a version…</option>
        {value && !options.some((v) => v.version === value) && <option value={value}>v{value}</option>}
        {options.map((v) => (
          <option key={v.version} value={v.version}>
            v{v.version}
            {v.aliases?.length ? ` (@${v.aliases.join(", @")})` : ""}
            {v.description ? ` — ${v.description.slice(0, 40)}` : ""}
          </option>
        ))}
      </select>
    </div>
  );

  const ld = left.detail.data;
  const rd = right.detail.data;
  const ll = left.lineage.data;
  const rl = right.lineage.data;
  const failure = [left.detail, right.detail, left.lineage, right.lineage].find((q) => q.isError)?.error;

  return (
    <div className="space-y-6">
      <div>
        <nav aria-label="Breadcrumb" className="mb-3 flex items-center gap-1 text-sm text-muted-foreground">
          <Link to="/models" className="hover:text-foreground hover:underline">
            Models
          </Link>
          <ChevronRight aria-hidden className="size-3.5" />
          <Link to={`/models/${encodeURIComponent(name)}`} className="hover:text-foreground hover:underline">
            {name}
          </Link>
          <ChevronRight aria-hidden className="size-3.5" />
          <span aria-current="page" className="text-foreground">
            Compare
          </span>
        </nav>
        <PageHeader
          title={a && b ? `Compare ${name} v${a} and v${b}` : `Compare versions of ${name}`}
          description="Differences in lineage, training config, metrics (B − A) and files."
        />
        <div className="flex flex-wrap items-end gap-3">
          {picker("a", a)}
          <Button type="button" variant="outline" size="icon" aria-label="Swap A and B" onClick={swap} disabled={!a || !b}>
            <ArrowLeftRight aria-hidden />
          </Button>
          {picker("b", b)}
        </div>
        {versions.isError && (
          <p role="alert" className="mt-2 text-sm text-destructive">
            Could not list the versions: {errorMessage(versions.error)}
          </p>
        )}
      </div>

      {!a || !b ? (
        <p className="rounded-lg border border-dashed p-6 text-center text-sm text-muted-foreground">Choose two versions to compare.</p>
      ) : failure ? (
        <p role="alert" className="rounded-lg border border-destructive/40 p-4 text-sm text-destructive">
          Could not load both versions: {errorMessage(failure)}
        </p>
      ) : !ld || !rd || !ll || !rl ? (
        <div aria-busy="true" className="space-y-4">
          <Skeleton className="h-40" />
          <Skeleton className="h-40" />
        </div>
      ) : (
        <Comparison
          name={name}
          a={{ version: ld.version ?? {}, lineage: ll }}
          b={{ version: rd.version ?? {}, lineage: rl }}
        />
      )}
    </div>
  );
}

interface Side {
  version: ModelVersion;
  lineage: GetLineageResponse;
}

function Comparison({ name, a, b }: { name: string; a: Side; b: Side }) {
  const la = a.lineage.lineage ?? {};
  const lb = b.lineage.lineage ?? {};
  const va = a.version.version ?? "";
  const vb = b.version.version ?? "";
  const summary = diffRecords<ReactNode>(
    {
      Kind: kindText(a.version),
      Status: statusName(a.version),
      "Base model": la.baseModel,
      "Parent version": la.parentVersion,
      Dataset: la.dataset,
      "Dataset sha256": la.datasetSha256,
      "Training job": la.trainingJob,
      Seed: la.seed,
      "Code commit": la.codeCommit,
      Source: la.source,
      "MLflow run": la.mlflowRunId,
    },
    {
      Kind: kindText(b.version),
      Status: statusName(b.version),
      "Base model": lb.baseModel,
      "Parent version": lb.parentVersion,
      Dataset: lb.dataset,
      "Dataset sha256": lb.datasetSha256,
      "Training job": lb.trainingJob,
      Seed: lb.seed,
      "Code commit": lb.codeCommit,
      Source: lb.source,
      "MLflow run": lb.mlflowRunId,
    },
  ).filter((row) => row.a !== undefined || row.b !== undefined);
  const order = ["Kind", "Status", "Source", "Base model", "Parent version", "Dataset", "Dataset sha256", "Training job", "Seed", "Code commit", "MLflow run"];
  summary.sort((x, y) => order.indexOf(x.key) - order.indexOf(y.key));
  const config = diffRecords<unknown>(la.parameters, lb.parameters);
  const libraries = diffRecords(la.libraryVersions, lb.libraryVersions);
  const metrics = diffMetrics(a.version.metrics, b.version.metrics);
  const files = diffFiles(a.version.files, b.version.files);

  const heads = (
    <>
      <TableHead scope="col">
        <Link to={versionHref(name, va)} className="underline-offset-4 hover:underline">A: v{va}</Link>
      </TableHead>
      <TableHead scope="col">
        <Link to={versionHref(name, vb)} className="underline-offset-4 hover:underline">B: v{vb}</Link>
      </TableHead>
    </>
  );

  return (
    <div className="space-y-4">
      <div className="grid gap-4 md:grid-cols-2">
        <VersionCard label="A" name={name} mv={a.version} />
        <VersionCard label="B" name={name} mv={b.version} />
      </div>

      <Section title="Lineage" description={countText(summary)}>
        <DiffTable label="Lineage comparison" keyHeader="Field" heads={heads} rows={summary} render={(v) => mono(v)} />
      </Section>

      <Section title="Training config" description={config.length ? countText(config) : undefined}>
        {config.length ? (
          <DiffTable label="Training config comparison" keyHeader="Parameter" heads={heads} rows={config} render={(v) => mono(v === undefined ? undefined : formatValue(v))} />
        ) : (
          <p className="text-sm text-muted-foreground">Neither version recorded training parameters.</p>
        )}
      </Section>

      <Section title="Metrics" description="B − A for metrics both versions have.">
        {metrics.length ? (
          <Table aria-label="Metrics comparison">
            <TableHeader>
              <TableRow>
                <TableHead scope="col">Metric</TableHead>
                {heads}
                <TableHead scope="col" className="text-right">B − A</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {metrics.map((row) => (
                <TableRow key={row.key} data-status={row.status} className={rowTint(row.status)}>
                  <TableCell className="font-mono text-xs">
                    {row.key} <StatusMark status={row.status} />
                  </TableCell>
                  <TableCell className="tabular-nums">{row.a === undefined ? <Missing /> : Number(row.a.toPrecision(8))}</TableCell>
                  <TableCell className="tabular-nums">{row.b === undefined ? <Missing /> : Number(row.b.toPrecision(8))}</TableCell>
                  <TableCell className="text-right font-medium tabular-nums">{row.delta === undefined ? <Missing /> : formatDelta(row.delta)}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        ) : (
          <p className="text-sm text-muted-foreground">Neither version has metrics.</p>
        )}
      </Section>

      <Section title="Library versions" description={libraries.length ? countText(libraries) : undefined}>
        {libraries.length ? (
          <DiffTable label="Library versions comparison" keyHeader="Library" heads={heads} rows={libraries} render={(v) => mono(v)} />
        ) : (
          <p className="text-sm text-muted-foreground">Neither version recorded library versions.</p>
        )}
      </Section>

      <Section title="Files" description={`${files.filter((f) => f.status !== "same").length} of ${files.length} files differ (matched by path, compared by sha256).`}>
        {files.length ? (
          <Table aria-label="Files comparison">
            <TableHeader>
              <TableRow>
                <TableHead scope="col">Path</TableHead>
                <TableHead scope="col">Status</TableHead>
                <TableHead scope="col">A sha256 (size)</TableHead>
                <TableHead scope="col">B sha256 (size)</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {files.map((row) => (
                <TableRow key={row.key} data-status={row.status} className={rowTint(row.status)}>
                  <TableCell className="font-mono text-xs break-all whitespace-normal">{row.key}</TableCell>
                  <TableCell>{statusText[row.status]}</TableCell>
                  <TableCell>{row.a ? <FileCell sha={row.a.sha256} size={row.a.sizeBytes} /> : <Missing />}</TableCell>
                  <TableCell>{row.b ? <FileCell sha={row.b.sha256} size={row.b.sizeBytes} /> : <Missing />}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        ) : (
          <p className="text-sm text-muted-foreground">No files recorded.</p>
        )}
      </Section>
    </div>
  );
}

function kindText(mv: ModelVersion): string {
  if (mv.kind === "MODEL_VERSION_KIND_ADAPTER") return mv.baseVersion ? `adapter on ${mv.baseVersion}` : "adapter";
  return mv.kind === "MODEL_VERSION_KIND_FULL" ? "full model" : "unknown";
}

function statusName(mv: ModelVersion): string {
  return mv.status === "MODEL_VERSION_STATUS_ARCHIVED" ? "archived" : mv.status === "MODEL_VERSION_STATUS_READY" ? "ready" : "unknown";
}

function countText(rows: DiffRow<unknown>[]): string {
  const differing = rows.filter((r) => r.status !== "same").length;
  return differing ? `${differing} of ${rows.length} differ.` : "All the same.";
}

function rowTint(status: DiffStatus): string {
  return status === "same" ? "" : "bg-warning/10 hover:bg-warning/15";
}

function StatusMark({ status }: { status: DiffStatus }) {
  if (status === "same") return null;
  return (
    <span className="ml-1.5 rounded border border-warning/50 px-1 py-px font-sans text-[11px] font-medium text-foreground">{statusText[status]}</span>
  );
}

function Missing() {
  return <span className="text-muted-foreground">—</span>;
}

function mono(value: ReactNode): ReactNode {
  if (value === undefined || value === "") return <Missing />;
  return <span className="font-mono text-xs break-all">{value}</span>;
}

function FileCell({ sha, size }: { sha: string | undefined; size: string | undefined }) {
  return (
    <span className="font-mono text-xs" title={sha}>
      {shortSha(sha)} <span className="font-sans text-muted-foreground">({formatBytes(size)})</span>
    </span>
  );
}

function DiffTable<T>({ label, keyHeader, heads, rows, render }: {
  label: string;
  keyHeader: string;
  heads: ReactNode;
  rows: DiffRow<T>[];
  render: (value: T | undefined) => ReactNode;
}) {
  return (
    <Table aria-label={label}>
      <TableHeader>
        <TableRow>
          <TableHead scope="col">{keyHeader}</TableHead>
          {heads}
        </TableRow>
      </TableHeader>
      <TableBody>
        {rows.map((row) => (
          <TableRow key={row.key} data-status={row.status} className={rowTint(row.status)}>
            <TableCell className="font-mono text-xs whitespace-nowrap">
              {row.key}
              <StatusMark status={row.status} />
            </TableCell>
            <TableCell className="whitespace-normal">{row.a === undefined ? <Missing /> : render(row.a)}</TableCell>
            <TableCell className="whitespace-normal">{row.b === undefined ? <Missing /> : render(row.b)}</TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

function Section({ title, description, children }: { title: string; description?: string; children: ReactNode }) {
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">{title}</h2>
        {description && <CardDescription>{description}</CardDescription>}
      </CardHeader>
      <CardContent>{children}</CardContent>
    </Card>
  );
}

function VersionCard({ label, name, mv }: { label: string; name: string; mv: ModelVersion }) {
  return (
    <Card className="gap-2">
      <CardHeader>
        <h2 className="flex flex-wrap items-center gap-2 leading-none font-semibold">
          {label}:{" "}
          <Link to={versionHref(name, mv.version ?? "")} className="underline-offset-4 hover:underline">
            {name} v{mv.version}
          </Link>
          <KindBadge version={mv} />
          <StatusBadge version={mv} />
        </h2>
      </CardHeader>
      <CardContent className="space-y-1 text-sm">
        <p>{mv.description || <span className="text-muted-foreground">No description.</span>}</p>
        <p className="text-muted-foreground">
          Created <LocalTime value={mv.createTime} /> by {mv.createdBy || "anonymous"}
          {mv.aliases?.length ? ` · @${mv.aliases.join(", @")}` : ""}
        </p>
      </CardContent>
    </Card>
  );
}
