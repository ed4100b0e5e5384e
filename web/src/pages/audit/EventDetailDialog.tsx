/** One event in full: its data as JSON, its ids (copyable) and links to the resource it changed. */
import type { ReactNode } from "react";
import { Link } from "react-router";

import type { HubEvent } from "@/api/types";
import { CopyButton } from "@/components/CopyButton";
import { Dialog, DialogContent, DialogDescription, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { resourceLinks } from "@/pages/audit/events";

function Field({ label, value, copy, children }: { label: string; value?: string; copy?: boolean; children?: ReactNode }) {
  return (
    <div className="grid grid-cols-[9.5rem_1fr] items-center gap-2 py-1">
      <dt className="text-sm text-muted-foreground">{label}</dt>
      <dd className="flex min-w-0 items-center gap-1 text-sm">
        {children ?? (value ? <span className="font-mono break-all">{value}</span> : <span className="text-muted-foreground">—</span>)}
        {copy && value && <CopyButton value={value} label={`Copy ${label}`} />}
      </dd>
    </div>
  );
}

export function EventDetailDialog({ event, onClose }: { event: HubEvent | undefined; onClose: () => void }) {
  const links = event ? resourceLinks(event) : [];
  return (
    <Dialog open={event !== undefined} onOpenChange={(open) => !open && onClose()}>
      {event && (
        <DialogContent className="max-h-[85vh] overflow-y-auto sm:max-w-2xl">
          <DialogHeader>
            <DialogTitle>
              {event.type} <span className="font-normal text-muted-foreground">#{event.position}</span>
            </DialogTitle>
            <DialogDescription>
              {event.aggregate ?? "unknown aggregate"} · recorded {event.time ? new Date(event.time).toLocaleString() : "at an unknown time"}
            </DialogDescription>
          </DialogHeader>
          <dl className="divide-y">
            <Field label="Position" value={event.position} />
            <Field label="Time" value={event.time}>
              {event.time && (
                <time dateTime={event.time} title={event.time} className="font-mono">
                  {event.time}
                </time>
              )}
            </Field>
            <Field label="Principal" value={event.metadata?.principal} />
            <Field label="Aggregate" value={event.aggregate}>
              {links.length > 0 ? (
                <span className="flex flex-wrap gap-3">
                  {links.map((link) => (
                    <Link key={link.href} to={link.href} className="font-mono text-primary underline underline-offset-4">
                      {link.label}
                    </Link>
                  ))}
                </span>
              ) : undefined}
            </Field>
            <Field label="Aggregate ID" value={event.aggregateId} copy />
            <Field label="Aggregate version" value={event.aggregateVersion} />
            <Field label="Request ID" value={event.metadata?.requestId} copy />
            <Field label="Trace ID" value={event.metadata?.traceId} copy />
          </dl>
          <section aria-labelledby="event-data-heading" className="min-w-0">
            <div className="mb-1.5 flex items-center justify-between">
              <h2 id="event-data-heading" className="text-sm font-medium">
                Data
              </h2>
              <CopyButton value={JSON.stringify(event.data ?? {}, null, 2)} label="Copy data as JSON" />
            </div>
            <pre className="max-h-80 overflow-auto rounded-md border bg-muted p-3 font-mono text-xs" tabIndex={0} aria-label="Event data as JSON">
              {JSON.stringify(event.data ?? {}, null, 2)}
            </pre>
          </section>
        </DialogContent>
      )}
    </Dialog>
  );
}
