/** Small pieces the version pages share: local times, kind/status badges, key/value tables. */
import type { ReactNode } from "react";
import { Link } from "react-router";

import type { ModelVersion } from "@/api/types";
import { Badge } from "@/components/ui/badge";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { parseVersionRef, versionHref } from "@/lib/lineage";

/** Local time, with the full ISO string in the title. */
export function LocalTime({ value }: { value: string | undefined }) {
  if (!value) return <span className="text-muted-foreground">—</span>;
  const date = new Date(value);
  return (
    <time dateTime={value} title={value}>
      {Number.isNaN(date.getTime()) ? value : date.toLocaleString()}
    </time>
  );
}

export function KindBadge({ version }: { version: ModelVersion }) {
  if (version.kind === "MODEL_VERSION_KIND_ADAPTER") return <Badge variant="secondary">Adapter</Badge>;
  if (version.kind === "MODEL_VERSION_KIND_FULL") return <Badge variant="outline">Full model</Badge>;
  return <Badge variant="outline">Unknown kind</Badge>;
}

export function StatusBadge({ version }: { version: ModelVersion }) {
  if (version.status === "MODEL_VERSION_STATUS_ARCHIVED") return <Badge variant="warning">Archived</Badge>;
  if (version.status === "MODEL_VERSION_STATUS_READY") return <Badge variant="success">Ready</Badge>;
  return <Badge variant="outline">No status</Badge>;
}

/** A `name/versions/N` reference as a link to that version, anything else as text. */
export function VersionRef({ reference }: { reference: string | undefined }) {
  if (!reference) return <span className="text-muted-foreground">—</span>;
  const ref = parseVersionRef(reference);
  if (!ref) return <span className="break-all">{reference}</span>;
  return (
    <Link to={versionHref(ref.model, ref.version)} className="font-medium underline-offset-4 hover:underline">
      {ref.model} v{ref.version}
    </Link>
  );
}

/** A definition list laid out as a two-column grid. */
export function Facts({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="grid grid-cols-[minmax(8rem,auto)_1fr] gap-x-4 gap-y-2 text-sm">
      {items.map(([term, value]) => (
        <div key={term} className="contents">
          <dt className="text-muted-foreground">{term}</dt>
          <dd className="min-w-0 break-words">{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/** Sorted key/value rows, or a quiet line saying there are none. */
export function KeyValueTable({ rows, keyHeader, valueHeader, empty, label }: {
  rows: [string, ReactNode][];
  keyHeader: string;
  valueHeader: string;
  empty: string;
  label: string;
}) {
  if (!rows.length) return <p className="text-sm text-muted-foreground">{empty}</p>;
  return (
    <Table aria-label={label}>
      <TableHeader>
        <TableRow>
          <TableHead scope="col">{keyHeader}</TableHead>
          <TableHead scope="col">{valueHeader}</TableHead>
        </TableRow>
      </TableHeader>
      <TableBody>
        {rows.map(([key, value]) => (
          <TableRow key={key}>
            <TableCell className="font-mono text-xs">{key}</TableCell>
            <TableCell className="font-mono text-xs break-all whitespace-normal">{value}</TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <span className="text-muted-foreground">{children}</span>;
}
