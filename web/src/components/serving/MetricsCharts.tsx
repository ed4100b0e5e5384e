/** The inference service's last minutes as charts: request rate and errors, TTFT and inter-token latency
 * percentiles, throughput and queue depth (10 s buckets from GET /v1/inference/metrics); further
 * figures (the trainer's throughput) join the same grid. */
import type { ReactNode } from "react";
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";

import { clockTick, type MetricsPoint } from "@/pages/serving/servingLogic";

interface Series {
  key: string;
  name: string;
  color: string;
  /** Measured only in buckets with traffic: drawn as dots joined across the quiet buckets. */
  sparse?: boolean;
  /** Drawn against a second axis on the right (a figure of another scale, like a count of jobs). */
  right?: boolean;
}

const CHARTS: ChartSpec[] = [
  {
    id: "requests",
    title: "Requests and errors",
    unit: "per minute",
    series: [
      { key: "requestsPerMinute", name: "requests/min", color: "var(--chart-1)" },
      { key: "errorsPerMinute", name: "errors/min", color: "var(--destructive)" },
    ],
  },
  {
    id: "ttft",
    title: "Time to first token",
    unit: "ms",
    series: [
      { key: "ttftP50", name: "p50", color: "var(--chart-1)", sparse: true },
      { key: "ttftP95", name: "p95", color: "var(--chart-3)", sparse: true },
    ],
  },
  {
    id: "itl",
    title: "Inter-token latency",
    unit: "ms",
    series: [
      { key: "itlP50", name: "p50", color: "var(--chart-1)", sparse: true },
      { key: "itlP95", name: "p95", color: "var(--chart-3)", sparse: true },
    ],
  },
  {
    id: "throughput",
    title: "Generated tokens",
    unit: "tokens/s",
    series: [{ key: "tokensPerSecond", name: "tokens/s", color: "var(--chart-2)" }],
  },
  {
    id: "queue",
    title: "Queue depth",
    unit: "requests waiting",
    series: [
      { key: "queueMax", name: "max", color: "var(--chart-4)" },
      { key: "queueAvg", name: "average", color: "var(--chart-5)" },
    ],
  },
];

const number = (v: unknown) =>
  v == null ? "–" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v);

export interface ChartSpec {
  id: string;
  title: string;
  unit: ReactNode;
  series: Series[];
}

/** One titled line chart over time (`t`, ms since the epoch) in the serving metrics' style. */
export function LineChartFigure({ id, title, unit, series, points }: ChartSpec & { points: object[] }) {
  return (
    <figure
      data-testid={`chart-${id}`}
      aria-labelledby={`chart-${id}-title`}
      className="flex h-64 flex-col gap-2 rounded-xl border bg-card p-4"
    >
      <figcaption className="flex items-baseline justify-between gap-2">
        <h3 id={`chart-${id}-title`} className="text-sm font-medium">
          {title}
        </h3>
        <span className="text-xs text-muted-foreground">{unit}</span>
      </figcaption>
      <div className="min-h-0 flex-1">
        <ResponsiveContainer width="100%" height="100%" minWidth={0} initialDimension={{ width: 320, height: 190 }}>
          <LineChart data={points} margin={{ top: 4, right: 8, bottom: 0, left: -12 }}>
            <CartesianGrid stroke="var(--border)" vertical={false} />
            <XAxis
              dataKey="t"
              type="number"
              scale="time"
              domain={["dataMin", "dataMax"]}
              tickFormatter={clockTick}
              tick={{ fontSize: 11, fill: "var(--muted-foreground)" }}
              stroke="var(--border)"
              minTickGap={24}
            />
            <YAxis
              yAxisId="left"
              allowDecimals
              domain={[0, "auto"]}
              tick={{ fontSize: 11, fill: "var(--muted-foreground)" }}
              stroke="var(--border)"
              width={48}
            />
            {series.some((s) => s.right) && (
              <YAxis
                yAxisId="right"
                orientation="right"
                allowDecimals={false}
                domain={[0, "auto"]}
                tick={{ fontSize: 11, fill: "var(--muted-foreground)" }}
                stroke="var(--border)"
                width={28}
              />
            )}
            <Tooltip
              labelFormatter={(t) => (typeof t === "number" ? new Date(t).toLocaleTimeString() : String(t))}
              formatter={(v) => number(v)}
              contentStyle={{ background: "var(--popover)", borderColor: "var(--border)", color: "var(--popover-foreground)", fontSize: 12 }}
            />
            {series.length > 1 && <Legend iconSize={8} wrapperStyle={{ fontSize: 11 }} />}
            {series.map((s) => (
              <Line
                key={s.key}
                yAxisId={s.right ? "right" : "left"}
                type="monotone"
                dataKey={s.key}
                name={s.name}
                stroke={s.color}
                strokeWidth={1.5}
                dot={s.sparse ? { r: 2, fill: s.color, strokeWidth: 0 } : false}
                connectNulls={s.sparse}
                isAnimationActive={false}
              />
            ))}
          </LineChart>
        </ResponsiveContainer>
      </div>
    </figure>
  );
}

/** The inference charts, then `extra` (further figures) in the same grid. */
export function MetricsCharts({ points, extra }: { points: MetricsPoint[]; extra?: ReactNode }) {
  return (
    <div className="grid gap-4 md:grid-cols-2 xl:grid-cols-3">
      {CHARTS.map((chart) => (
        <LineChartFigure key={chart.id} {...chart} points={points} />
      ))}
      {extra}
    </div>
  );
}
