/** One dataset: what it held when registered, the versions trained on it, and its first records. */
import { useQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { Link, useParams } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import { ApiError } from "@/api/errors";
import { CopyButton } from "@/components/CopyButton";
import { versionPath } from "@/components/events/describe";
import { PageHeader } from "@/components/PageHeader";
import { Badge } from "@/components/ui/badge";
import { Card, CardContent, CardDescription, CardHeader } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { PreviewRecord } from "@/pages/datasets/DatasetPreview";
import { formatBytes, formatCount, localTime } from "@/lib/format";
import { formatName } from "@/pages/datasets/format";

const PREVIEW_LIMIT = 20;

function Fact({ label, children, wide }: { label: string; children: ReactNode; wide?: boolean }) {
  return (
    <div className={wide ? "grid gap-0.5 sm:col-span-2 lg:col-span-4" : "grid gap-0.5"}>
      <dt className="text-xs font-medium text-muted-foreground">{label}</dt>
      <dd className="min-w-0 text-sm">{children}</dd>
    </div>
  );
}

function kindName(kind: string | undefined): string {
  return (kind ?? "").replace("MODEL_VERSION_KIND_", "").toLowerCase() || "—";
}

function TrainedVersions({ name }: { name: string }) {
  const versions = useQuery({
    queryKey: ["datasets", "versions", name],
    queryFn: () => call(api.GET("/v1/datasets/{name}/versions", { params: { path: { name }, query: { pageSize: 100 } } })),
  });
  const rows = versions.data?.versions ?? [];
  const total = versions.data?.totalSize ?? 0;
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Versions trained on it</h2>
        <CardDescription>Model versions whose lineage names this dataset, newest first.</CardDescription>
      </CardHeader>
      <CardContent>
        {versions.isError ? (
          <p role="alert" className="text-sm text-destructive">
            Could not list the versions: {errorMessage(versions.error)}
          </p>
        ) : versions.isPending ? (
          <Skeleton className="h-16 w-full" />
        ) : rows.length === 0 ? (
          <p className="text-sm text-muted-foreground">No version has been trained on this dataset yet.</p>
        ) : (
          <>
            <Table>
              <TableHeader>
                <TableRow>
                  <TableHead>Version</TableHead>
                  <TableHead>Kind</TableHead>
                  <TableHead>Aliases</TableHead>
                  <TableHead>Created by</TableHead>
                  <TableHead>Created</TableHead>
                </TableRow>
              </TableHeader>
              <TableBody>
                {rows.map((v) => (
                  <TableRow key={`${v.model}/${v.version}`}>
                    <TableCell>
                      <Link to={versionPath(v.model ?? "", v.version ?? "0")} className="font-medium underline decoration-muted-foreground/40 underline-offset-4 hover:decoration-foreground">
                        {v.model} v{v.version}
                      </Link>
                    </TableCell>
                    <TableCell>{kindName(v.kind)}</TableCell>
                    <TableCell>
                      <span className="flex flex-wrap gap-1">
                        {(v.aliases ?? []).map((a) => (
                          <Badge key={a} variant="secondary">
                            {a}
                          </Badge>
                        ))}
                      </span>
                    </TableCell>
                    <TableCell>{v.createdBy || "—"}</TableCell>
                    <TableCell className="whitespace-nowrap">
                      <time dateTime={v.createTime} title={v.createTime}>
                        {localTime(v.createTime)}
                      </time>
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
            {total > rows.length && (
              <p className="mt-2 text-sm text-muted-foreground">
                Showing {rows.length} of {formatCount(total)}.
              </p>
            )}
          </>
        )}
      </CardContent>
    </Card>
  );
}

function Preview({ name }: { name: string }) {
  const preview = useQuery({
    queryKey: ["datasets", "preview", name],
    queryFn: () => call(api.GET("/v1/datasets/{name}:preview", { params: { path: { name }, query: { limit: PREVIEW_LIMIT } } })),
  });
  const records = (preview.data?.records ?? []) as Record<string, unknown>[];
  const total = Number(preview.data?.recordCount ?? 0);
  return (
    <Card>
      <CardHeader>
        <h2 className="leading-none font-semibold">Preview</h2>
        <CardDescription>
          {preview.data
            ? `The first ${formatCount(records.length)} of ${formatCount(total)} records, as the file holds them now.`
            : "The first records of the file."}
        </CardDescription>
      </CardHeader>
      <CardContent className="grid gap-4">
        {preview.isError ? (
          <p role="alert" className="text-sm text-destructive">
            Could not read the file: {errorMessage(preview.error)}
          </p>
        ) : preview.isPending ? (
          <Skeleton className="h-40 w-full" />
        ) : records.length === 0 ? (
          <p className="text-sm text-muted-foreground">The file holds no records.</p>
        ) : (
          <>
            {preview.data?.truncated && (
              <p role="status" className="rounded-md border border-warning/40 px-3 py-2 text-sm text-warning">
                Truncated: the file holds more than is shown here, or long records and strings were shortened.
              </p>
            )}
            <ol className="grid gap-4">
              {records.map((record, i) => (
                <li key={i} className="grid gap-2 rounded-lg border p-3" aria-label={`Record ${i + 1}`}>
                  <span className="text-xs font-medium text-muted-foreground">Record {i + 1}</span>
                  <PreviewRecord record={record} />
                </li>
              ))}
            </ol>
          </>
        )}
      </CardContent>
    </Card>
  );
}

export default function DatasetDetailPage() {
  const { name = "" } = useParams();
  const dataset = useQuery({
    queryKey: ["datasets", "get", name],
    queryFn: () => call(api.GET("/v1/datasets/{name}", { params: { path: { name } } })),
  });

  if (dataset.isError) {
    const missing = dataset.error instanceof ApiError && dataset.error.httpStatus === 404;
    return (
      <div>
        <PageHeader title={name} description={missing ? "No dataset has this name." : undefined} />
        <div role="alert" className="rounded-md border border-destructive/50 p-4 text-sm text-destructive">
          {errorMessage(dataset.error)}
        </div>
        <p className="mt-4 text-sm">
          <Link to="/datasets" className="underline underline-offset-4">
            Back to datasets
          </Link>
        </p>
      </div>
    );
  }

  const d = dataset.data?.dataset;
  return (
    <div>
      <div>
        <nav aria-label="Breadcrumb" className="mb-2 text-sm text-muted-foreground">
          <Link to="/datasets" className="underline-offset-4 hover:underline">
            Datasets
          </Link>{" "}
          / {name}
        </nav>
        <PageHeader title={name} description={d?.description || (d ? "No description." : undefined)} />
      </div>
      <div className="grid gap-6">
        <Card>
          <CardHeader>
            <h2 className="leading-none font-semibold">Details</h2>
            <CardDescription>What the file held when it was registered.</CardDescription>
          </CardHeader>
          <CardContent>
            {!d ? (
              <Skeleton className="h-24 w-full" />
            ) : (
              <dl className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
                <Fact label="SHA-256" wide>
                  <span className="flex items-center gap-1">
                    <code className="font-mono text-xs break-all" data-testid="dataset-sha256">
                      {d.sha256}
                    </code>
                    {d.sha256 && <CopyButton value={d.sha256} label="Copy SHA-256" />}
                  </span>
                </Fact>
                <Fact label="Records">
                  <span data-testid="dataset-records">{formatCount(d.recordCount)}</span>
                </Fact>
                <Fact label="Size">
                  <span title={`${formatCount(d.sizeBytes)} bytes`}>{formatBytes(d.sizeBytes)}</span>
                </Fact>
                <Fact label="Format">
                  <Badge variant="outline">{formatName(d.format)}</Badge>
                </Fact>
                <Fact label="Created">
                  <time dateTime={d.createTime} title={d.createTime}>
                    {localTime(d.createTime)}
                  </time>{" "}
                  by {d.createdBy || "—"}
                </Fact>
                <Fact label="Path" wide>
                  <span className="flex items-center gap-1">
                    <code className="font-mono text-xs break-all">{d.path}</code>
                    {d.path && <CopyButton value={d.path} label="Copy path" />}
                  </span>
                </Fact>
              </dl>
            )}
          </CardContent>
        </Card>
        {/* Only once the dataset is known: a missing one shows one error, not one per section. */}
        {d && <TrainedVersions name={name} />}
        {d && <Preview name={name} />}
      </div>
    </div>
  );
}
