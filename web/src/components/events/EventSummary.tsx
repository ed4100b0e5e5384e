/** One event as a line: "alice created model demo · 5 s ago", the resource linked. */
import { useEffect, useState } from "react";
import { Link } from "react-router";

import type { HubEvent } from "@/api/types";
import { describeEvent, relativeTime } from "@/components/events/describe";
import { cn } from "@/lib/utils";

/** Re-render every `ms` so relative times stay true while a page is open. */
export function useNow(ms = 10_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** A time as "3 min ago", the full timestamp in its title and datetime attribute. */
export function RelativeTime({ iso, className }: { iso?: string; className?: string }) {
  const now = useNow();
  if (!iso) return null;
  return (
    <time dateTime={iso} title={`${new Date(iso).toLocaleString()} (${iso})`} className={cn("whitespace-nowrap", className)}>
      {relativeTime(iso, now)}
    </time>
  );
}

export function EventSummary({ event, className }: { event: HubEvent; className?: string }) {
  const d = describeEvent(event);
  return (
    <span className={cn("min-w-0", className)}>
      <span className="font-medium">{d.actor}</span> {d.action}{" "}
      {d.href ? (
        <Link to={d.href} className="font-medium text-foreground underline decoration-muted-foreground/40 underline-offset-4 hover:decoration-foreground">
          {d.target}
        </Link>
      ) : (
        <span className="font-medium">{d.target}</span>
      )}
      {d.after && ` ${d.after}`}
      {d.detail && <span className="text-muted-foreground"> ({d.detail})</span>}
    </span>
  );
}
