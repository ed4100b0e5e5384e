/**
 * Every alias move of a model, newest first across aliases, and an "as of" picker
 * that asks the registry where each alias pointed at a chosen moment.
 */
import { useQueries } from "@tanstack/react-query";
import { History } from "lucide-react";
import { useId, useState } from "react";
import { Link } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import type { AliasMove } from "@/api/types";
import { AliasBadge } from "@/components/models/AliasBadge";
import { FieldError } from "@/components/FormField";
import { Timestamp } from "@/components/models/Timestamp";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Skeleton } from "@/components/ui/skeleton";
import { localInputToRfc3339, mergeTimeline, rfc3339ToLocalInput } from "@/pages/models/modelsLogic";

export function AliasTimeline({
  name,
  histories,
  loading,
}: {
  name: string;
  histories: Record<string, AliasMove[] | undefined>;
  loading: boolean;
}) {
  const entries = mergeTimeline(histories);
  const versionLink = (v: string) => (
    <Link to={`/models/${encodeURIComponent(name)}/versions/${v}`} className="font-mono text-primary underline-offset-4 hover:underline">
      v{v}
    </Link>
  );
  return (
    <section aria-labelledby="timeline-heading" className="grid content-start gap-4 rounded-lg border bg-card p-4">
      <h2 id="timeline-heading" className="flex items-center gap-2 text-base font-semibold">
        <History className="size-4" aria-hidden="true" /> Alias timeline
      </h2>
      <AsOf name={name} aliases={Object.keys(histories).sort()} />
      {loading && <Skeleton className="h-24 w-full" />}
      {!loading && entries.length === 0 && <p className="text-sm text-muted-foreground">No alias has been set yet; promotions will be listed here.</p>}
      {entries.length > 0 && (
        <ol className="relative ml-2 grid gap-4 border-l pl-5" aria-label="Alias moves, newest first">
          {entries.map((entry) => (
            <li key={`${entry.alias}-${entry.position}`} className="relative" data-testid="alias-move">
              <span aria-hidden="true" className="absolute top-1.5 -left-[1.6rem] size-2.5 rounded-full border-2 border-background bg-primary" />
              <div className="flex flex-wrap items-center gap-2 text-sm">
                <AliasBadge alias={entry.alias} />
                {entry.previousVersion && entry.previousVersion !== "0" ? (
                  <span>
                    {versionLink(entry.previousVersion)} → {versionLink(entry.version ?? "")}
                  </span>
                ) : (
                  <span>set to {versionLink(entry.version ?? "")}</span>
                )}
              </div>
              <p className="mt-0.5 text-xs text-muted-foreground">
                by <span className="font-medium text-foreground">{entry.principal || "unknown"}</span> · <Timestamp value={entry.moveTime} />
              </p>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

/** Where each alias pointed at a chosen local date-time (GetAliasHistory ?atTime=). */
function AsOf({ name, aliases }: { name: string; aliases: string[] }) {
  const id = useId();
  const [value, setValue] = useState("");
  const atTime = localInputToRfc3339(value);
  const results = useQueries({
    queries: aliases.map((alias) => ({
      queryKey: ["model", name, "alias-at", alias, atTime],
      queryFn: () => call(api.GET("/v1/models/{name}/aliases/{alias}/history", { params: { path: { name, alias }, query: { atTime } } })),
      enabled: atTime !== undefined,
    })),
  });
  const invalid = value !== "" && atTime === undefined ? "Not a valid date and time." : undefined;
  return (
    <div className="grid gap-2 rounded-md border bg-muted/30 p-3">
      <div className="flex flex-wrap items-end gap-2">
        <div className="grid gap-1">
          <Label htmlFor={`${id}-at`}>Aliases as of</Label>
          <Input
            id={`${id}-at`}
            type="datetime-local"
            step={1}
            value={value}
            onChange={(e) => setValue(e.target.value)}
            className="w-60 dark:[color-scheme:dark]"
            aria-describedby={invalid ? `${id}-at-error` : `${id}-at-hint`}
            aria-invalid={invalid ? true : undefined}
          />
        </div>
        <Button type="button" variant="ghost" size="sm" onClick={() => setValue(rfc3339ToLocalInput(new Date().toISOString()))}>
          Now
        </Button>
        {value && (
          <Button type="button" variant="ghost" size="sm" onClick={() => setValue("")}>
            Clear
          </Button>
        )}
      </div>
      <FieldError id={`${id}-at-error`} message={invalid} />
      {!atTime && (
        <p id={`${id}-at-hint`} className="text-xs text-muted-foreground">
          Pick a moment (your local time) to see where every alias pointed then.
        </p>
      )}
      {atTime && aliases.length === 0 && <p className="text-sm text-muted-foreground">This model has no aliases.</p>}
      {atTime && aliases.length > 0 && (
        <ul className="grid gap-1 text-sm" aria-label={`Where each alias pointed at ${new Date(atTime).toLocaleString()}`} data-testid="aliases-as-of">
          {aliases.map((alias, i) => {
            const result = results[i];
            const at = result?.data?.versionAtTime;
            return (
              <li key={alias} className="flex items-center gap-2" data-testid={`as-of-${alias}`}>
                <AliasBadge alias={alias} />
                <span aria-hidden="true" className="text-muted-foreground">→</span>
                {result?.isPending && <Skeleton className="h-4 w-10" />}
                {result?.isError && <span className="text-destructive">{errorMessage(result.error)}</span>}
                {result?.isSuccess &&
                  (at && at !== "0" ? (
                    <Link to={`/models/${encodeURIComponent(name)}/versions/${at}`} className="font-mono text-primary underline-offset-4 hover:underline">
                      v{at}
                    </Link>
                  ) : (
                    <span className="text-muted-foreground">not set yet</span>
                  ))}
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
