/**
 * One pill per dependency from the gateway's deep health probe, green when it
 * answers, amber when it answers slowly, red when it fails; its popover says
 * what was checked and how long it took. A probe, so it is polled, not streamed.
 */
import { useQuery } from "@tanstack/react-query";
import { Activity } from "lucide-react";

import { ApiError, errorFromResponse } from "@/api/errors";
import { errorMessage } from "@/api/client";
import { Popover, PopoverContent, PopoverTrigger } from "@/components/ui/popover";
import { auth } from "@/lib/auth";
import { useAuthState } from "@/lib/useAuth";
import { cn } from "@/lib/utils";

/**
 * The body of `GET /health/deep` (gateway/health.py). That route belongs to the
 * gateway, not to the API, so it is not in the generated OpenAPI types: this is
 * the one response shape the dashboard declares itself.
 */
export interface DeepHealth {
  status: "ok" | "degraded";
  version: string;
  checks: { name: string; ok: boolean; detail: string; latencyMs: number }[];
}

export const HEALTH_REFRESH_MS = 15_000;
/** A check slower than this is shown amber: it works, but something is struggling. */
export const SLOW_CHECK_MS = 1_000;

type Level = "ok" | "slow" | "down";

const LEVEL_TEXT: Record<Level, string> = { ok: "healthy", slow: "slow", down: "failing" };
const DOT: Record<Level, string> = { ok: "bg-success", slow: "bg-warning", down: "bg-destructive" };

export async function fetchDeepHealth(signal?: AbortSignal): Promise<DeepHealth> {
  const sent = auth.get().key; // a 401 speaks of this key, not of one signed in meanwhile
  const response = await fetch("/health/deep", { headers: { Accept: "application/json", ...auth.headers() }, signal });
  if (response.status === 401) auth.unauthorized(sent);
  // 503 still carries the checks: it means "degraded", which is what the pills show.
  if (response.status !== 200 && response.status !== 503) throw await errorFromResponse(response);
  const body = (await response.json()) as Partial<DeepHealth>;
  if (!Array.isArray(body.checks)) throw new ApiError(response.status, undefined, "unexpected health answer");
  return { status: body.status ?? "degraded", version: body.version ?? "", checks: body.checks };
}

function levelOf(check: { ok: boolean; latencyMs: number }): Level {
  if (!check.ok) return "down";
  return check.latencyMs > SLOW_CHECK_MS ? "slow" : "ok";
}

const label = (name: string) => name.replace(/_/g, " ");

function Pill({ name, level, children }: { name: string; level: Level; children: React.ReactNode }) {
  return (
    <Popover>
      <PopoverTrigger
        aria-label={`${label(name)}: ${LEVEL_TEXT[level]}`}
        data-testid={`health-${name}`}
        data-level={level}
        className="inline-flex h-7 items-center gap-1.5 rounded-full border px-2.5 text-xs font-medium text-foreground outline-none hover:bg-accent focus-visible:ring-[3px] focus-visible:ring-ring/50"
      >
        <span aria-hidden className={cn("size-2 rounded-full", DOT[level])} />
        {label(name)}
      </PopoverTrigger>
      <PopoverContent align="end" className="w-80 text-sm">
        {children}
      </PopoverContent>
    </Popover>
  );
}

function Detail({ name, level, detail, latencyMs, checkedAt }: { name: string; level: Level; detail: string; latencyMs?: number; checkedAt: number }) {
  return (
    <div className="grid gap-2">
      <div className="flex items-center gap-2 font-medium">
        <span aria-hidden className={cn("size-2 rounded-full", DOT[level])} />
        {label(name)} — {LEVEL_TEXT[level]}
      </div>
      <p className={cn("break-words", level === "down" ? "text-destructive" : "text-muted-foreground")}>{detail || "no detail"}</p>
      <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-xs text-muted-foreground">
        {latencyMs !== undefined && (
          <>
            <dt>Latency</dt>
            <dd className="tabular-nums">{latencyMs.toFixed(latencyMs < 10 ? 1 : 0)} ms</dd>
          </>
        )}
        <dt>Checked</dt>
        <dd title={new Date(checkedAt).toISOString()}>{new Date(checkedAt).toLocaleTimeString()}</dd>
      </dl>
    </div>
  );
}

export function HealthPills() {
  const { key, signInRequired } = useAuthState();
  const health = useQuery({
    queryKey: ["health-deep", key],
    queryFn: ({ signal }) => fetchDeepHealth(signal),
    refetchInterval: HEALTH_REFRESH_MS,
    enabled: !signInRequired,
    retry: false,
  });

  if (signInRequired) return null;
  if (health.isPending) {
    return (
      <span className="inline-flex items-center gap-1.5 text-xs text-muted-foreground">
        <Activity className="size-3.5 animate-pulse" aria-hidden />
        Checking health…
      </span>
    );
  }
  const checkedAt = health.dataUpdatedAt || health.errorUpdatedAt;
  if (health.isError) {
    return (
      <ul aria-label="Hub health" className="flex items-center gap-1.5">
        <li>
          <Pill name="gateway" level="down">
            <Detail name="gateway" level="down" detail={errorMessage(health.error)} checkedAt={health.errorUpdatedAt} />
          </Pill>
        </li>
      </ul>
    );
  }
  const checks = health.data?.checks ?? [];
  const worst: Level = checks.some((c) => !c.ok) ? "down" : checks.some((c) => levelOf(c) === "slow") ? "slow" : "ok";
  return (
    <>
      {/* Narrow screens: one pill summing up, its popover listing every check. */}
      <div className="lg:hidden">
        <Pill name="health" level={worst}>
          <ul className="grid gap-3">
            {checks.map((c) => (
              <li key={c.name}>
                <Detail name={c.name} level={levelOf(c)} detail={c.detail} latencyMs={c.latencyMs} checkedAt={checkedAt} />
              </li>
            ))}
          </ul>
        </Pill>
      </div>
      <ul aria-label="Hub health" className="hidden items-center gap-1.5 lg:flex">
        {checks.map((c) => (
          <li key={c.name}>
            <Pill name={c.name} level={levelOf(c)}>
              <Detail name={c.name} level={levelOf(c)} detail={c.detail} latencyMs={c.latencyMs} checkedAt={checkedAt} />
            </Pill>
          </li>
        ))}
      </ul>
    </>
  );
}
