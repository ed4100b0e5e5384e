/**
 * The event log as a virtualized table: fixed-height rows, and only the rows
 * in view (plus a few) are in the DOM, so 100,000 events scroll like 100.
 * Rows above and below the window are stood in for by two spacer rows.
 */
import { useVirtualizer } from "@tanstack/react-virtual";
import { ChevronRight } from "lucide-react";
import { type ReactNode, type Ref, useCallback, useImperativeHandle, useLayoutEffect, useRef } from "react";
import { Link } from "react-router";

import type { HubEvent } from "@/api/types";
import { Badge } from "@/components/ui/badge";
import { cn } from "@/lib/utils";
import { aggregateLink, compactLocalTime, summarize, versionLink } from "@/pages/audit/events";

export const ROW_HEIGHT = 36;
const HEADER_HEIGHT = 40;

function localTime(time: string | undefined): string {
  if (!time) return "";
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? time : compactLocalTime(date);
}

function isAtBottom(element: HTMLElement): boolean {
  return element.scrollHeight - element.scrollTop - element.clientHeight <= ROW_HEIGHT;
}

export interface EventTableHandle {
  scrollToEnd: () => void;
  scrollToStart: () => void;
}

interface EventTableProps {
  events: readonly HubEvent[];
  count: number;
  /** Live-following: keep the newest row in view while the user stays at the bottom. */
  following: boolean;
  openPosition: string | undefined;
  onOpen: (event: HubEvent) => void;
  empty: ReactNode;
  ref?: Ref<EventTableHandle>;
}

const cell = "h-9 overflow-hidden px-2 py-0 text-ellipsis whitespace-nowrap shadow-[inset_0_-1px_0_var(--color-border)]";

export function EventTable({ events, count, following, openPosition, onOpen, empty, ref }: EventTableProps) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  // Stable, or the virtualizer rebuilds its measurements of every row on each render (slow at 100,000).
  const getItemKey = useCallback((index: number) => events[index]?.position ?? index, [events]);
  const estimateSize = useCallback(() => ROW_HEIGHT, []);
  // eslint-disable-next-line react-hooks/incompatible-library -- the virtualizer is read fresh on every render, never memoized
  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scrollRef.current,
    estimateSize,
    paddingStart: HEADER_HEIGHT,
    overscan: 12,
    getItemKey,
  });

  useImperativeHandle(ref, () => ({
    scrollToEnd: () => {
      const element = scrollRef.current;
      if (element) element.scrollTop = element.scrollHeight;
    },
    scrollToStart: () => {
      const element = scrollRef.current;
      if (element) element.scrollTop = 0;
    },
  }));

  // New rows: follow them if the user was at the bottom before they came, then note where the user is now.
  useLayoutEffect(() => {
    const element = scrollRef.current;
    if (!element) return;
    if (following && atBottom.current && count > 0) element.scrollTop = element.scrollHeight;
    atBottom.current = isAtBottom(element);
  }, [count, following]);

  const items = virtualizer.getVirtualItems();
  const first = items[0];
  const last = items[items.length - 1];
  const padTop = first ? first.start - HEADER_HEIGHT : 0;
  const padBottom = last ? virtualizer.getTotalSize() - last.end : 0;

  return (
    <div
      ref={scrollRef}
      role="region"
      aria-label="Event log"
      tabIndex={0}
      onScroll={(e) => {
        atBottom.current = isAtBottom(e.currentTarget);
      }}
      className="relative h-[calc(100vh-22rem)] min-h-80 overflow-auto rounded-lg border bg-card outline-none focus-visible:ring-[3px] focus-visible:ring-ring/50"
    >
      <table className="w-full min-w-[60rem] table-fixed border-separate border-spacing-0 text-sm" aria-rowcount={count + 1}>
        <colgroup>
          <col className="w-24" />
          <col className="w-44" />
          <col className="w-28" />
          <col className="w-56" />
          <col className="w-48" />
          <col />
        </colgroup>
        <thead className="sticky top-0 z-10 bg-card">
          <tr aria-rowindex={1} style={{ height: HEADER_HEIGHT }}>
            {["Position", "Time", "Principal", "Aggregate", "Event type", "Summary"].map((name) => (
              <th key={name} scope="col" className={cn(cell, "h-10 text-left font-medium text-muted-foreground")}>
                {name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {padTop > 0 && (
            <tr aria-hidden="true">
              <td colSpan={6} style={{ height: padTop, padding: 0 }} />
            </tr>
          )}
          {items.map((item) => {
            const event = events[item.index];
            if (!event) return null;
            const aggregate = aggregateLink(event);
            const version = versionLink(event);
            const open = openPosition === event.position;
            const principal = event.metadata?.principal;
            const summary = summarize(event);
            return (
              <tr
                key={item.key}
                aria-rowindex={item.index + 2}
                data-position={event.position}
                onClick={() => onOpen(event)}
                className={cn("cursor-pointer hover:bg-muted/50", open && "bg-muted")}
                style={{ height: ROW_HEIGHT }}
              >
                <td className={cell}>
                  <button
                    type="button"
                    aria-haspopup="dialog"
                    aria-expanded={open}
                    onClick={(e) => {
                      e.stopPropagation();
                      onOpen(event);
                    }}
                    className="inline-flex items-center gap-1 rounded-sm font-mono text-xs outline-none hover:underline focus-visible:ring-[3px] focus-visible:ring-ring/50"
                  >
                    <ChevronRight className="size-3.5 text-muted-foreground" aria-hidden />
                    <span className="sr-only">Show event </span>
                    {event.position}
                  </button>
                </td>
                <td className={cell}>
                  <time dateTime={event.time} title={event.time} className="tabular-nums">
                    {localTime(event.time)}
                  </time>
                </td>
                <td className={cell} title={principal}>
                  {principal ? principal : <span className="text-muted-foreground">—</span>}
                </td>
                <td className={cell} title={event.aggregate}>
                  {aggregate ? (
                    <Link to={aggregate.href} onClick={(e) => e.stopPropagation()} className="font-mono text-xs hover:underline">
                      {aggregate.label}
                    </Link>
                  ) : (
                    <span className="font-mono text-xs">{event.aggregate}</span>
                  )}
                  {version && (
                    <>
                      {" "}
                      <Link
                        to={version.href}
                        onClick={(e) => e.stopPropagation()}
                        className="font-mono text-xs text-muted-foreground hover:text-foreground hover:underline"
                      >
                        <span className="sr-only">{event.aggregate} </span>
                        {version.label}
                      </Link>
                    </>
                  )}
                </td>
                <td className={cell}>
                  <Badge variant="outline" className="font-mono font-normal">
                    {event.type}
                  </Badge>
                </td>
                <td className={cn(cell, "text-muted-foreground")} title={summary}>
                  {summary}
                </td>
              </tr>
            );
          })}
          {padBottom > 0 && (
            <tr aria-hidden="true">
              <td colSpan={6} style={{ height: padBottom, padding: 0 }} />
            </tr>
          )}
          {count === 0 && (
            <tr>
              <td colSpan={6} className="h-40 text-center text-muted-foreground">
                {empty}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
