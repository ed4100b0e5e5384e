/**
 * One model version: what it is, where it came from (the lineage graph and the
 * recorded provenance), its files, the references to call it by, and snippets to call it.
 */
import { useQuery } from "@tanstack/react-query";
import { ArrowLeftRight, ChevronRight } from "lucide-react";
import { useMemo } from "react";
import { Link, useParams } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import { ApiError } from "@/api/errors";
import type { GetLineageResponse, Lineage, ModelVersion } from "@/api/types";
import { useModelEvents } from "@/api/useModelEvents";
import { CodeSnippet } from "@/components/CodeSnippet";
import { CopyButton } from "@/components/CopyButton";
import { LineageGraph } from "@/components/lineage/LineageGraph";
import { Empty, Facts, KeyValueTable, KindBadge, LocalTime, StatusBadge, VersionRef } from "@/components/lineage/parts";
import { PageHeader } from "@/components/PageHeader";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { formatValue } from "@/lib/diff";
import { formatBytes, shortSha } from "@/lib/format";
import { buildLineageGraph, usageSnippets } from "@/lib/lineage";
import { useAuthState } from "@/lib/useAuth";

export default function VersionDetailPage() {
  const { name = "", version = "" } = useParams();
  const versionQuery = useQuery({
    queryKey: ["model", name, "version", version],
    queryFn: () => call(api.GET("/v1/models/{name}/versions/{version}", { params: { path: { name, version } } })),
  });
  const lineageQuery = useQuery({
    queryKey: ["model", name, "lineage", version],
    queryFn: () => call(api.GET("/v1/models/{name}/versions/{version}/lineage", { params: { path: { name, version } } })),
  });
  useModelEvents(name);

  const crumbs = (
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
        v{version}
      </span>
    </nav>
  );

  if (versionQuery.isPending) {
    return (
      <div aria-busy="true">
        {crumbs}
        <PageHeader title={`${name} v${version}`} description="Loading…" />
        <div className="grid gap-4 lg:grid-cols-2">
          <Skeleton className="h-48" />
          <Skeleton className="h-48" />
          <Skeleton className="h-40 lg:col-span-2" />
        </div>
      </div>
    );
  }
  if (versionQuery.isError) {
    const notFound = versionQuery.error instanceof ApiError && versionQuery.error.httpStatus === 404;
    return (
      <div>
        {crumbs}
        <PageHeader title={`${name} v${version}`} />
        <div role="alert" className="rounded-lg border border-destructive/40 p-4 text-sm text-destructive">
          {notFound ? `Version ${version} of model ${name} was not found.` : `Could not load the version: ${errorMessage(versionQuery.error)}`}
        </div>
        <Button asChild variant="outline" className="mt-4">
          <Link to={`/models/${encodeURIComponent(name)}`}>Back to {name}</Link>
        </Button>
      </div>
    );
  }

  const mv = versionQuery.data.version ?? {};
  return (
    <div className="space-y-6">
      <div>
        {crumbs}
        <PageHeader
          title={
            <span className="flex flex-wrap items-center gap-2">
              {name} v{version}
              <KindBadge version={mv} />
              <StatusBadge version={mv} />
            </span>
          }
          description={mv.description || "No description."}
          actions={
            <Button asChild variant="outline" size="sm">
              <Link to={`/models/${encodeURIComponent(name)}/compare?${compareQuery(version)}`}>
                <ArrowLeftRight aria-hidden /> Compare
              </Link>
            </Button>
          }
        />
      </div>

      <div className="grid gap-4 lg:grid-cols-2">
        <Overview mv={mv} lineage={lineageQuery.data?.lineage} />
        <References name={name} version={version} aliases={mv.aliases ?? []} />
      </div>

      <LineageSection name={name} version={version} query={lineageQuery} />

      <div className="grid gap-4 lg:grid-cols-2">
        <MetricsCard metrics={mv.metrics} />
        <ProvenanceCard lineage={lineageQuery.data?.lineage} loading={lineageQuery.isPending} />
      </div>

      <ConfigCard lineage={lineageQuery.data?.lineage} loading={lineageQuery.isPending} />
      <FilesCard mv={mv} />
      <UseItCard name={name} version={version} aliases={mv.aliases ?? []} />
    </div>
  );
}

/** Compare with the previous version when there is one, else open the picker with this one as B. */
function compareQuery(version: string): string {
  const n = Number(version);
  return n > 1 ? `a=${n - 1}&b=${n}` : `b=${version}`;
}

function Overview({ mv, lineage }: { mv: ModelVersion; lineage: Lineage | undefined }) {
  const kind =
    mv.kind === "MODEL_VERSION_KIND_ADAPTER" ? (
      <span>
        Adapter on base <VersionRef reference={mv.baseVersion} />
      </span>
    ) : mv.kind === "MODEL_VERSION_KIND_FULL" ? (
      "Full model"
    ) : (
      <Empty>Unknown</Empty>
    );
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Overview</h2>
      </CardHeader>
      <CardContent>
        <Facts
          items={[
            ["Kind", kind],
            ["Status", <StatusBadge key="s" version={mv} />],
            ["Source", lineage?.source || <Empty>—</Empty>],
            ["Created by", mv.createdBy || <Empty>anonymous</Empty>],
            ["Created", <LocalTime key="t" value={mv.createTime} />],
            [
              "Aliases",
              mv.aliases?.length ? (
                <span className="flex flex-wrap gap-1">
                  {mv.aliases.map((alias) => (
                    <span key={alias} className="rounded-md border px-1.5 py-0.5 font-mono text-xs">
                      @{alias}
                    </span>
                  ))}
                </span>
              ) : (
                <Empty>none</Empty>
              ),
            ],
            ["Artifact path", mv.artifactPath ? <span className="font-mono text-xs break-all">{mv.artifactPath}</span> : <Empty>—</Empty>],
          ]}
        />
      </CardContent>
    </Card>
  );
}

function References({ name, version, aliases }: { name: string; version: string; aliases: string[] }) {
  const refs = [`${name}/versions/${version}`, ...aliases.map((alias) => `${name}@${alias}`)];
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">References</h2>
        <CardDescription>Call this version by its number, or by an alias (which may move later).</CardDescription>
      </CardHeader>
      <CardContent>
        <ul className="space-y-1.5" aria-label="References">
          {refs.map((ref) => (
            <li key={ref} className="flex items-center justify-between gap-2 rounded-md border bg-muted/40 py-1 pr-1 pl-3">
              <code className="truncate font-mono text-sm">{ref}</code>
              <CopyButton value={ref} label={`Copy reference ${ref}`} text="Copy" />
            </li>
          ))}
        </ul>
      </CardContent>
    </Card>
  );
}

function LineageSection({ name, version, query }: {
  name: string;
  version: string;
  query: { data?: GetLineageResponse; isPending: boolean; isError: boolean; error: unknown };
}) {
  const graph = useMemo(() => buildLineageGraph(query.data, name, version), [query.data, name, version]);
  const lineage = query.data?.lineage;
  const registered = query.data?.dataset;
  const shaChanged = registered?.sha256 && lineage?.datasetSha256 && registered.sha256 !== lineage.datasetSha256;
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Lineage</h2>
        <CardDescription>The base, the training job and the dataset (with the sha256 it had) that produced this version.</CardDescription>
      </CardHeader>
      <CardContent className="space-y-3">
        {query.isPending ? (
          <Skeleton className="h-24 w-full" />
        ) : query.isError ? (
          <p role="alert" className="text-sm text-destructive">
            Could not load the lineage: {errorMessage(query.error)}
          </p>
        ) : (
          <>
            <LineageGraph graph={graph} label={`Lineage of ${name} v${version}`} />
            {graph.nodes.length === 1 && <p className="text-sm text-muted-foreground">No base, dataset or training job was recorded for this version.</p>}
            {lineage?.dataset && (
              <p className="text-sm">
                Dataset <Link to={`/datasets/${encodeURIComponent(lineage.dataset)}`} className="font-medium underline-offset-4 hover:underline">{lineage.dataset}</Link>{" "}
                sha256 <code className="font-mono text-xs break-all" title={lineage.datasetSha256}>{lineage.datasetSha256 || "not recorded"}</code>
                {lineage.datasetSha256 && <CopyButton value={lineage.datasetSha256} label="Copy dataset sha256" className="ml-1 align-middle" />}
              </p>
            )}
            {shaChanged && (
              <p role="note" className="text-sm text-warning">
                The dataset registered as {registered?.name} now has sha256 {shortSha(registered?.sha256)}, not the one this version was trained on.
              </p>
            )}
          </>
        )}
      </CardContent>
    </Card>
  );
}

function MetricsCard({ metrics }: { metrics: Record<string, number> | undefined }) {
  const rows = Object.entries(metrics ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Metrics</h2>
      </CardHeader>
      <CardContent>
        <KeyValueTable
          label="Metrics"
          keyHeader="Metric"
          valueHeader="Value"
          empty="No metrics were recorded for this version."
          rows={rows.map(([key, value]) => [key, <span key={key} className="tabular-nums">{Number(value.toPrecision(8))}</span>])}
        />
      </CardContent>
    </Card>
  );
}

function ProvenanceCard({ lineage, loading }: { lineage: Lineage | undefined; loading: boolean }) {
  const libraries = Object.entries(lineage?.libraryVersions ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const mono = (value: string | undefined, copyLabel?: string) =>
    value ? (
      <span className="inline-flex max-w-full items-center gap-1">
        <code className="font-mono text-xs break-all">{value}</code>
        {copyLabel && <CopyButton value={value} label={copyLabel} />}
      </span>
    ) : (
      <Empty>—</Empty>
    );
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Provenance</h2>
        <CardDescription>What is needed to produce this version again.</CardDescription>
      </CardHeader>
      <CardContent className="space-y-4">
        {loading ? (
          <Skeleton className="h-32 w-full" />
        ) : (
          <>
            <Facts
              items={[
                ["Source", lineage?.source || <Empty>—</Empty>],
                ["Base model", lineage?.baseModel ? <VersionRef reference={lineage.baseModel} /> : <Empty>—</Empty>],
                ["Seed", lineage?.seed ?? <Empty>not recorded</Empty>],
                ["Code commit", mono(lineage?.codeCommit, "Copy code commit")],
                ["MLflow run", mono(lineage?.mlflowRunId, "Copy MLflow run id")],
                ["Training job", lineage?.trainingJob ? (
                  <Link to={`/training/${encodeURIComponent(lineage.trainingJob)}`} className="font-mono text-xs underline-offset-4 hover:underline">{lineage.trainingJob}</Link>
                ) : <Empty>—</Empty>],
                ["Source sha256", mono(lineage?.sourceSha256, "Copy source sha256")],
                ["Source URI", mono(lineage?.sourceUri)],
              ]}
            />
            <div>
              <h3 className="mb-1 text-sm font-medium">Library versions</h3>
              <KeyValueTable label="Library versions" keyHeader="Library" valueHeader="Version" empty="No library versions were recorded." rows={libraries} />
            </div>
          </>
        )}
      </CardContent>
    </Card>
  );
}

function ConfigCard({ lineage, loading }: { lineage: Lineage | undefined; loading: boolean }) {
  const rows = Object.entries(lineage?.parameters ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]): [string, string] => [key, formatValue(value)]);
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Training config</h2>
        <CardDescription>The resolved parameters that produced this version.</CardDescription>
      </CardHeader>
      <CardContent>
        {loading ? (
          <Skeleton className="h-24 w-full" />
        ) : (
          <KeyValueTable label="Training config" keyHeader="Parameter" valueHeader="Value" empty="No parameters were recorded." rows={rows} />
        )}
      </CardContent>
    </Card>
  );
}

function FilesCard({ mv }: { mv: ModelVersion }) {
  const files = [...(mv.files ?? [])].sort((a, b) => (a.path ?? "").localeCompare(b.path ?? ""));
  const total = files.reduce((sum, f) => sum + Number(f.sizeBytes ?? 0), 0);
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Files</h2>
        <CardDescription>
          {files.length} file{files.length === 1 ? "" : "s"}, {formatBytes(total)}. Checked against these sha256 before the first load.
        </CardDescription>
      </CardHeader>
      <CardContent>
        {files.length === 0 ? (
          <p className="text-sm text-muted-foreground">No files recorded.</p>
        ) : (
          <Table aria-label="Files">
            <TableHeader>
              <TableRow>
                <TableHead scope="col">Path</TableHead>
                <TableHead scope="col" className="text-right">Size</TableHead>
                <TableHead scope="col">sha256</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {files.map((file) => (
                <TableRow key={file.path}>
                  <TableCell className="font-mono text-xs break-all whitespace-normal">{file.path}</TableCell>
                  <TableCell className="text-right tabular-nums" title={`${file.sizeBytes ?? 0} bytes`}>
                    {formatBytes(file.sizeBytes)}
                  </TableCell>
                  <TableCell>
                    <span className="inline-flex items-center gap-1">
                      <code className="font-mono text-xs" title={file.sha256}>
                        {shortSha(file.sha256)}
                      </code>
                      {file.sha256 && <CopyButton value={file.sha256} label={`Copy sha256 of ${file.path}`} />}
                    </span>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
      </CardContent>
    </Card>
  );
}

function UseItCard({ name, version, aliases }: { name: string; version: string; aliases: string[] }) {
  const { key } = useAuthState();
  const reference = `${name}/versions/${version}`;
  const snippets = usageSnippets(globalThis.location?.origin ?? "", reference, Boolean(key));
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Use it</h2>
        <CardDescription>
          These call exactly version {version}
          {aliases.length ? `; put ${name}@${aliases[0]} instead to follow the alias` : ""}.
        </CardDescription>
      </CardHeader>
      <CardContent>
        <CodeSnippet snippets={snippets} label="Snippet language" />
      </CardContent>
    </Card>
  );
}
