/** A model's versions, newest first, with two checkboxes' worth of "Compare". */
import { ArrowUpCircle, GitCompare } from "lucide-react";
import { useState } from "react";
import { Link, useNavigate } from "react-router";

import type { ModelVersion } from "@/api/types";
import { AliasBadge } from "@/components/models/AliasBadge";
import { Timestamp } from "@/components/models/Timestamp";
import { VersionKindBadge } from "@/components/models/VersionKindBadge";
import { Button } from "@/components/ui/button";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { compactMetrics } from "@/pages/models/modelsLogic";

export function VersionsTable({
  name,
  versions,
  loading,
  empty,
  onPromote,
}: {
  name: string;
  versions: ModelVersion[];
  loading: boolean;
  empty: React.ReactNode;
  /** Open the Promote confirmation with this version picked. */
  onPromote: (version: string) => void;
}) {
  const navigate = useNavigate();
  const [picked, setPicked] = useState<string[]>([]);
  const toggle = (version: string) =>
    setPicked((current) =>
      current.includes(version) ? current.filter((v) => v !== version) : [...current, version].slice(-2),
    );
  const compare = () => {
    const [a, b] = [...picked].sort((x, y) => Number(x) - Number(y));
    void navigate(`/models/${encodeURIComponent(name)}/compare?a=${a}&b=${b}`);
  };

  return (
    <div className="grid gap-2">
      <div className="flex items-center justify-between gap-2">
        <p className="text-sm text-muted-foreground" aria-live="polite">
          {picked.length === 0 && "Pick two versions to compare them."}
          {picked.length === 1 && `v${picked[0]} picked — pick one more to compare.`}
          {picked.length === 2 && `Compare v${[...picked].sort((x, y) => Number(x) - Number(y)).join(" and v")}.`}
        </p>
        <Button size="sm" variant="outline" disabled={picked.length !== 2} onClick={compare}>
          <GitCompare /> Compare
        </Button>
      </div>
      <div className="rounded-lg border bg-card">
        <Table>
          <TableHeader>
            <TableRow>
              <TableHead className="w-10">
                <span className="sr-only">Pick to compare</span>
              </TableHead>
              <TableHead>Version</TableHead>
              <TableHead>Kind</TableHead>
              <TableHead>Aliases</TableHead>
              <TableHead>Metrics</TableHead>
              <TableHead>Description</TableHead>
              <TableHead>Created by</TableHead>
              <TableHead>Created</TableHead>
              <TableHead className="w-10">
                <span className="sr-only">Actions</span>
              </TableHead>
            </TableRow>
          </TableHeader>
          <TableBody>
            {loading &&
              Array.from({ length: 3 }, (_, i) => (
                <TableRow key={i}>
                  {Array.from({ length: 9 }, (_, j) => (
                    <TableCell key={j}>
                      <Skeleton className="h-4 w-full" />
                    </TableCell>
                  ))}
                </TableRow>
              ))}
            {versions.map((version) => {
              const number = version.version ?? "";
              const metrics = compactMetrics(version.metrics);
              const checked = picked.includes(number);
              return (
                <TableRow key={number} data-state={checked ? "selected" : undefined}>
                  <TableCell>
                    <input
                      type="checkbox"
                      className="size-4 accent-primary dark:[color-scheme:dark]"
                      aria-label={`Pick version ${number} to compare`}
                      checked={checked}
                      onChange={() => toggle(number)}
                    />
                  </TableCell>
                  <TableCell className="font-mono font-medium">
                    <Link to={`/models/${encodeURIComponent(name)}/versions/${number}`} className="text-primary underline-offset-4 hover:underline">
                      v{number}
                    </Link>
                  </TableCell>
                  <TableCell>
                    <VersionKindBadge version={version} />
                  </TableCell>
                  <TableCell>
                    {version.aliases?.length ? (
                      <span className="flex flex-wrap gap-1">
                        {version.aliases.map((alias) => (
                          <AliasBadge key={alias} alias={alias} />
                        ))}
                      </span>
                    ) : (
                      <span className="text-muted-foreground">—</span>
                    )}
                  </TableCell>
                  <TableCell className="font-mono text-xs">
                    {metrics.shown.length ? (
                      <span title={Object.entries(version.metrics ?? {}).map(([k, v]) => `${k}=${v}`).join("\n")}>
                        {metrics.shown.join(" · ")}
                        {metrics.more > 0 && <span className="text-muted-foreground"> +{metrics.more}</span>}
                      </span>
                    ) : (
                      <span className="text-muted-foreground">—</span>
                    )}
                  </TableCell>
                  <TableCell className="max-w-72 truncate text-xs" title={version.description}>
                    {version.description || <span className="text-muted-foreground">—</span>}
                  </TableCell>
                  <TableCell className="text-xs">{version.createdBy || <span className="text-muted-foreground">—</span>}</TableCell>
                  <TableCell className="text-xs">
                    <Timestamp value={version.createTime} />
                  </TableCell>
                  <TableCell>
                    <Button variant="ghost" size="icon" aria-label={`Promote version ${number}`} title={`Point an alias at v${number}`} onClick={() => onPromote(number)}>
                      <ArrowUpCircle />
                    </Button>
                  </TableCell>
                </TableRow>
              );
            })}
            {!loading && versions.length === 0 && (
              <TableRow>
                <TableCell colSpan={9} className="py-10 text-center">
                  {empty}
                </TableCell>
              </TableRow>
            )}
          </TableBody>
        </Table>
      </div>
    </div>
  );
}
