/** Datasets: every registered JSONL file, searchable and sortable, and the form to register one. */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { ChevronLeft, ChevronRight, Database, Search } from "lucide-react";
import { useEffect, useId, useState } from "react";
import { Link, useSearchParams } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import type { paths } from "@/api/schema";
import { PageHeader } from "@/components/PageHeader";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { RegisterDatasetDialog } from "@/pages/datasets/RegisterDatasetDialog";
import { datasetPath } from "@/components/events/describe";
import { formatBytes, formatCount, localTime, shortSha } from "@/lib/format";
import { useDebounced } from "@/lib/useDebounced";
import { formatName } from "@/pages/datasets/format";

type OrderBy = NonNullable<NonNullable<paths["/v1/datasets"]["get"]["parameters"]["query"]>["orderBy"]>;

const ORDERS: { value: OrderBy; label: string }[] = [
  { value: "create_time desc", label: "Newest first" },
  { value: "create_time", label: "Oldest first" },
  { value: "name", label: "Name A–Z" },
  { value: "name desc", label: "Name Z–A" },
];
const PAGE_SIZE = 25;

export default function DatasetsPage() {
  const id = useId();
  const [params, setParams] = useSearchParams();
  const [text, setText] = useState(params.get("q") ?? "");
  const query = useDebounced(text.trim());
  const orderParam = params.get("sort");
  const orderBy: OrderBy = ORDERS.some((o) => o.value === orderParam) ? (orderParam as OrderBy) : "create_time desc";
  // Tokens of the pages seen so far for these filters: tokens[i] opens page i ("" is the first).
  const filterKey = JSON.stringify([query, orderBy]);
  const [paging, setPaging] = useState<{ key: string; tokens: string[] }>({ key: filterKey, tokens: [""] });
  const tokens = paging.key === filterKey ? paging.tokens : [""];
  const setTokens = (change: (t: string[]) => string[]) => setPaging({ key: filterKey, tokens: change(tokens) });
  const page = tokens.length - 1;

  useEffect(() => {
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (query) next.set("q", query);
        else next.delete("q");
        return next;
      },
      { replace: true },
    );
  }, [query, setParams]);

  const list = useQuery({
    queryKey: ["datasets", "list", { query, orderBy, pageToken: tokens[page] }],
    queryFn: () =>
      call(
        api.GET("/v1/datasets", {
          params: { query: { query: query || undefined, orderBy, pageSize: PAGE_SIZE, pageToken: tokens[page] || undefined } },
        }),
      ),
    placeholderData: keepPreviousData,
  });

  const datasets = list.data?.datasets ?? [];
  const total = list.data?.totalSize ?? 0;
  const first = page * PAGE_SIZE + 1;
  const nextToken = list.data?.nextPageToken;

  return (
    <div>
      <PageHeader
        title="Datasets"
        description="JSONL files registered for training, with what they held when registered and the versions trained on them."
        actions={<RegisterDatasetDialog />}
      />

      <div className="mb-4 flex flex-wrap items-end gap-3">
        <div className="grid gap-1.5">
          <Label htmlFor={`${id}-search`}>Search</Label>
          <div className="relative">
            <Search aria-hidden="true" className="pointer-events-none absolute top-2.5 left-2.5 size-4 text-muted-foreground" />
            <Input
              id={`${id}-search`}
              type="search"
              value={text}
              onChange={(e) => setText(e.target.value)}
              placeholder="Name or description"
              className="w-72 pl-8"
            />
          </div>
        </div>
        <div className="grid gap-1.5">
          <Label htmlFor={`${id}-sort`}>Sort by</Label>
          <select
            id={`${id}-sort`}
            value={orderBy}
            onChange={(e) => {
              setParams(
                (current) => {
                  const next = new URLSearchParams(current);
                  next.set("sort", e.target.value);
                  return next;
                },
                { replace: true },
              );
            }}
            className="h-9 rounded-md border border-input bg-background px-2 text-sm shadow-xs outline-none focus-visible:ring-[3px] focus-visible:ring-ring/50"
          >
            {ORDERS.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </div>
        <p className="ml-auto text-sm text-muted-foreground" aria-live="polite">
          {list.data ? `${formatCount(total)} dataset${total === 1 ? "" : "s"}${query ? ` matching “${query}”` : ""}` : ""}
        </p>
      </div>

      {list.isError ? (
        <div role="alert" className="rounded-md border border-destructive/50 p-4 text-sm text-destructive">
          Could not list datasets: {errorMessage(list.error)}
        </div>
      ) : list.isPending ? (
        <div className="grid gap-2" aria-label="Loading datasets">
          {Array.from({ length: 5 }, (_, i) => (
            <Skeleton key={i} className="h-9 w-full" />
          ))}
        </div>
      ) : datasets.length === 0 ? (
        <div className="flex flex-col items-center gap-3 rounded-lg border border-dashed p-10 text-center">
          <Database aria-hidden="true" className="size-8 text-muted-foreground" />
          {query ? (
            <p className="text-sm text-muted-foreground">No datasets match “{query}”.</p>
          ) : (
            <>
              <p className="font-medium">No datasets yet — register one</p>
              <p className="max-w-md text-sm text-muted-foreground">
                Put a JSONL file under the hub's data root, then use “Register dataset” above to train adapters on it.
              </p>
            </>
          )}
        </div>
      ) : (
        <div className="rounded-lg border bg-card">
          <Table>
            <TableHeader>
              <TableRow>
                <TableHead>Name</TableHead>
                <TableHead>Format</TableHead>
                <TableHead className="text-right">Records</TableHead>
                <TableHead className="text-right">Size</TableHead>
                <TableHead>SHA-256</TableHead>
                <TableHead>Created by</TableHead>
                <TableHead>Created</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {datasets.map((d) => (
                <TableRow key={d.name}>
                  <TableCell className="max-w-72">
                    <Link to={datasetPath(d.name ?? "")} className="font-medium underline decoration-muted-foreground/40 underline-offset-4 hover:decoration-foreground">
                      {d.name}
                    </Link>
                    {d.description && <div className="truncate text-xs text-muted-foreground">{d.description}</div>}
                  </TableCell>
                  <TableCell>
                    <Badge variant="outline">{formatName(d.format)}</Badge>
                  </TableCell>
                  <TableCell className="text-right tabular-nums">{formatCount(d.recordCount)}</TableCell>
                  <TableCell className="text-right whitespace-nowrap tabular-nums">{formatBytes(d.sizeBytes)}</TableCell>
                  <TableCell>
                    <code className="font-mono text-xs" title={d.sha256}>
                      {shortSha(d.sha256)}
                    </code>
                  </TableCell>
                  <TableCell>{d.createdBy || "—"}</TableCell>
                  <TableCell className="whitespace-nowrap">
                    <time dateTime={d.createTime} title={d.createTime}>
                      {localTime(d.createTime)}
                    </time>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          <nav aria-label="Pages" className="flex items-center justify-between gap-2 border-t px-3 py-2 text-sm">
            <span className="text-muted-foreground">
              {formatCount(first)}–{formatCount(first + datasets.length - 1)} of {formatCount(total)}
            </span>
            <div className="flex gap-2">
              <Button
                variant="outline"
                size="sm"
                disabled={page === 0}
                onClick={() => setTokens((t) => t.slice(0, -1))}
              >
                <ChevronLeft aria-hidden="true" />
                Previous
              </Button>
              <Button
                variant="outline"
                size="sm"
                disabled={!nextToken || list.isPlaceholderData}
                onClick={() => nextToken && setTokens((t) => [...t, nextToken])}
              >
                Next
                <ChevronRight aria-hidden="true" />
              </Button>
            </div>
          </nav>
        </div>
      )}
    </div>
  );
}
