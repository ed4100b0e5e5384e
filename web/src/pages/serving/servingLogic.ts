/** Display forms and chart rows for the serving page (int64s arrive as strings, zeros omitted). */
import type { components } from "@/api/schema";

export type LoadedModel = components["schemas"]["mlxhub.v1.LoadedModel"];
export type ServerInfo = components["schemas"]["mlxhub.v1.GetServerInfoResponse"];
export type MetricsSummary = components["schemas"]["mlxhub.v1.GetMetricsSummaryResponse"];
export type TrainingMetrics = components["schemas"]["mlxhub.v1.GetTrainingMetricsResponse"];

/** The version a tile is about: the adapter when there is one, else the model version. */
export function servedVersion(model: LoadedModel): string {
  return model.adapterVersion || model.modelVersion || "";
}

/** "smollm2/versions/3" → "/models/smollm2/versions/3" (the version page). */
export function versionLink(version: string): string {
  const match = /^([^/]+)\/versions\/(\d+)$/.exec(version);
  return match ? `/models/${encodeURIComponent(match[1]!)}/versions/${match[2]}` : "/models";
}

/** Seconds → "4:05" (m:ss), or "1:02:03" past an hour; never negative. */
export function formatCountdown(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** 0.5234 → "0.52 GB"; under 0.01 GB shows as MB. */
export function formatGb(gb: number | undefined): string {
  const v = gb ?? 0;
  if (v > 0 && v < 0.01) return `${Math.round(v * 1024)} MB`;
  return `${v.toFixed(2)} GB`;
}

/** A latency in ms with sensible precision: "0.84 ms", "12.3 ms", "1,204 ms". */
export function formatMs(ms: number | null | undefined): string {
  const v = ms ?? 0;
  if (v === 0) return "–";
  if (v < 1) return `${v.toFixed(2)} ms`;
  if (v < 100) return `${v.toFixed(1)} ms`;
  return `${Math.round(v).toLocaleString("en-US")} ms`;
}

/** Seconds until keep-alive unloads the version at `now` (ms); null while it streams (no unload time). */
export function secondsToUnload(model: LoadedModel, now: number): number | null {
  if (!model.unloadTime) return null;
  const t = Date.parse(model.unloadTime);
  return Number.isNaN(t) ? null : Math.max(0, (t - now) / 1000);
}

/** Latencies and rates are null where nothing was measured (a gap, not a zero, on a chart). */
export interface MinutePoint {
  t: number;
  requests: number;
  tokens: number;
  ttftMs: number | null;
  tokensPerSecond: number | null;
}

const measured = (v: number | undefined): number | null => (v ? v : null);

export function minutePoints(model: LoadedModel): MinutePoint[] {
  return (model.recent ?? []).map((m) => ({
    t: Date.parse(m.startTime ?? ""),
    requests: Number(m.requestCount ?? 0),
    tokens: Number(m.generatedTokens ?? 0),
    ttftMs: measured(m.timeToFirstTokenP50Ms),
    tokensPerSecond: measured(m.tokensPerSecond),
  }));
}

export interface MetricsPoint {
  t: number;
  requestsPerMinute: number;
  errorsPerMinute: number;
  ttftP50: number | null;
  ttftP95: number | null;
  itlP50: number | null;
  itlP95: number | null;
  tokensPerSecond: number;
  queueMax: number;
  queueAvg: number;
}

/** One chart row per bucket; counts become per-minute rates (a 10 s bucket's 2 requests = 12/min). */
export function metricsPoints(summary: MetricsSummary | undefined): MetricsPoint[] {
  const perMinute = 60 / (summary?.bucketSeconds || 60);
  return (summary?.buckets ?? []).map((b) => ({
    t: Date.parse(b.startTime ?? ""),
    requestsPerMinute: Number(b.requestCount ?? 0) * perMinute,
    errorsPerMinute: Number(b.errorCount ?? 0) * perMinute,
    ttftP50: measured(b.timeToFirstTokenP50Ms),
    ttftP95: measured(b.timeToFirstTokenP95Ms),
    itlP50: measured(b.interTokenLatencyP50Ms),
    itlP95: measured(b.interTokenLatencyP95Ms),
    tokensPerSecond: b.tokensPerSecond ?? 0,
    queueMax: b.queueDepthMax ?? 0,
    queueAvg: b.queueDepthAvg ?? 0,
  }));
}

export interface TrainingPoint {
  t: number;
  tokensPerSecond: number;
  runningJobs: number;
}

/** One chart row per bucket of the trainer's summary (GET /v1/training/metrics). */
export function trainingPoints(summary: TrainingMetrics | undefined): TrainingPoint[] {
  return (summary?.buckets ?? []).map((b) => ({
    t: Date.parse(b.startTime ?? ""),
    tokensPerSecond: b.tokensPerSecond ?? 0,
    runningJobs: b.runningJobs ?? 0,
  }));
}

/** Totals over the window, for the figures beside the charts. */
export function metricsTotals(summary: MetricsSummary | undefined): { requests: number; errors: number; tokens: number } {
  let requests = 0;
  let errors = 0;
  let tokens = 0;
  for (const b of summary?.buckets ?? []) {
    requests += Number(b.requestCount ?? 0);
    errors += Number(b.errorCount ?? 0);
    tokens += Number(b.generatedTokens ?? 0);
  }
  return { requests, errors, tokens };
}

/** "14:05" for an axis tick. */
export function clockTick(t: number): string {
  return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
