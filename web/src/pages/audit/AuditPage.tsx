/**
 * Audit: the registry's event log, filtered by aggregate, event type,
 * principal and time (all in the URL), optionally followed live, each event
 * openable in full, and the filtered log exportable as NDJSON.
 */
import { ArrowDownToLine, ArrowUpToLine, Download, Loader2 } from "lucide-react";
import { useMemo, useRef, useState } from "react";
import { useSearchParams } from "react-router";

import { errorMessage } from "@/api/client";
import type { HubEvent } from "@/api/types";
import { PageHeader } from "@/components/PageHeader";
import { Button } from "@/components/ui/button";
import { Label } from "@/components/ui/label";
import { Switch } from "@/components/ui/switch";
import { downloadNdjson, ndjsonFilename } from "@/lib/ndjson-export";
import { cn } from "@/lib/utils";
import { EventDetailDialog } from "@/pages/audit/EventDetailDialog";
import { countText } from "@/pages/audit/events";
import { EventTable, type EventTableHandle } from "@/pages/audit/EventTable";
import { FilterBar } from "@/pages/audit/FilterBar";
import { type AuditFilters, filtersFromParams, filtersKey, filtersToParams, hasFilters } from "@/pages/audit/filters";
import { useEventLog } from "@/pages/audit/useEventLog";

const FOLLOW_LABELS: Record<string, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  stopped: "stopped",
};

export default function AuditPage() {
  const [params, setParams] = useSearchParams();
  const paramsText = params.toString();
  // eslint-disable-next-line react-hooks/exhaustive-deps -- the params' text stands for them
  const filters = useMemo(() => filtersFromParams(params), [paramsText]);
  const follow = params.get("follow") === "1";
  const log = useEventLog(filters, follow);
  const [open, setOpen] = useState<HubEvent>();
  const table = useRef<EventTableHandle>(null);

  const navigate = (next: AuditFilters, nextFollow: boolean) => {
    const search = filtersToParams(next);
    if (nextFollow) search.set("follow", "1");
    setParams(search);
  };

  const count = log.buffer.length;
  const filtered = hasFilters(filters);
  const exportEvents = () => downloadNdjson(log.buffer.events, ndjsonFilename("mlxhub-events"));

  return (
    <>
      <PageHeader
        title="Audit"
        description="Every change to the registry, in order: who did what, when, and with which request."
        actions={
          <Button variant="outline" size="sm" onClick={exportEvents} disabled={count === 0}>
            <Download aria-hidden />
            Export NDJSON
          </Button>
        }
      />
      <FilterBar key={filtersKey(filters)} filters={filters} onApply={(next) => navigate(next, follow)} />

      <div className="mb-2 flex flex-wrap items-center gap-x-4 gap-y-2">
        <p className="flex items-center gap-2 text-sm">
          <span data-testid="event-count" className="font-medium tabular-nums">
            {countText(count)}
          </span>
          {filtered && <span className="text-muted-foreground">matching the filters</span>}
          {log.loading && (
            <span className="flex items-center gap-1 text-muted-foreground" data-testid="event-loading">
              <Loader2 className="size-3.5 animate-spin" aria-hidden />
              loading…
            </span>
          )}
        </p>
        <div className="ml-auto flex items-center gap-2">
          <Button variant="ghost" size="sm" onClick={() => table.current?.scrollToStart()} disabled={count === 0}>
            <ArrowUpToLine aria-hidden />
            First
          </Button>
          <Button variant="ghost" size="sm" onClick={() => table.current?.scrollToEnd()} disabled={count === 0}>
            <ArrowDownToLine aria-hidden />
            Latest
          </Button>
          <div className="flex items-center gap-2 rounded-md border px-3 py-1.5">
            <Switch id="audit-follow" checked={follow} onCheckedChange={(on) => navigate(filters, on)} />
            <Label htmlFor="audit-follow">Follow live</Label>
            {log.followState && (
              <span
                data-testid="follow-state"
                className={cn(
                  "text-xs",
                  log.followState === "live" ? "text-success" : log.followState === "stopped" ? "text-destructive" : "text-muted-foreground",
                )}
              >
                {FOLLOW_LABELS[log.followState]}
              </span>
            )}
          </div>
        </div>
      </div>

      {log.error !== undefined && (
        <div role="alert" className="mb-3 rounded-md border border-destructive/40 bg-destructive/5 px-3 py-2 text-sm text-destructive">
          Could not read the event log: {errorMessage(log.error)}
        </div>
      )}
      {log.followError !== undefined && log.followState === "stopped" && (
        <div role="alert" className="mb-3 rounded-md border border-destructive/40 bg-destructive/5 px-3 py-2 text-sm text-destructive">
          Live follow stopped: {errorMessage(log.followError)}
        </div>
      )}

      <EventTable
        ref={table}
        events={log.buffer.events}
        count={count}
        following={follow && !log.loading}
        openPosition={open?.position}
        onOpen={setOpen}
        empty={
          log.loading
            ? "Reading the event log…"
            : log.error !== undefined
              ? "The event log could not be read."
              : filtered
                ? "No events match these filters."
                : "No events yet — register a model or a dataset and its events appear here."
        }
      />
      <EventDetailDialog event={open} onClose={() => setOpen(undefined)} />
    </>
  );
}
