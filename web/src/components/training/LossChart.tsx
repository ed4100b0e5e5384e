/**
 * Loss curves with recharts (only the training pages import it, and pages load
 * lazily). No animation and no dots on the training line, and long curves are
 * thinned for display, so 10,000 steps redraw as smoothly as 100.
 */
import { useMemo } from "react";
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";

import { downsample, type LossPoint } from "@/components/training/trainingLogic";

export interface LossSeries {
  /** Shown in the legend ("training", or a job's short id). */
  name: string;
  points: readonly LossPoint[];
}

const COLORS = ["var(--chart-1)", "var(--chart-2)", "var(--chart-3)", "var(--chart-4)", "var(--chart-5)"];

/** Merge series by step into recharts rows: `<i>` is series i's training loss, `<i>v` its validation loss. */
function rows(series: readonly LossSeries[]): Record<string, number>[] {
  const byStep = new Map<number, Record<string, number> & { step: number }>();
  series.forEach((s, i) => {
    for (const p of downsample(s.points, series.length > 1 ? 1000 : 2000)) {
      const row = byStep.get(p.step) ?? { step: p.step };
      if (p.loss !== undefined) row[`s${i}`] = p.loss;
      if (p.validationLoss !== undefined) row[`s${i}v`] = p.validationLoss;
      byStep.set(p.step, row);
    }
  });
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

export function LossChart({ series, height = 320 }: { series: readonly LossSeries[]; height?: number }) {
  const data = useMemo(() => rows(series), [series]);
  const single = series.length === 1;
  return (
    <div style={{ height }} className="w-full text-xs">
      <ResponsiveContainer width="100%" height="100%">
        <LineChart data={data} margin={{ top: 8, right: 16, bottom: 4, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />
          <XAxis dataKey="step" type="number" domain={["dataMin", "dataMax"]} stroke="var(--muted-foreground)" allowDecimals={false} />
          <YAxis stroke="var(--muted-foreground)" width={56} domain={["auto", "auto"]} tickFormatter={(v: number) => v.toPrecision(3)} />
          <Tooltip
            isAnimationActive={false}
            contentStyle={{ background: "var(--popover)", border: "1px solid var(--border)", color: "var(--popover-foreground)" }}
            labelFormatter={(step) => `step ${String(step)}`}
            formatter={(value) => (typeof value === "number" ? value.toFixed(4) : String(value))}
          />
          <Legend />
          {series.map((s, i) => (
            <Line
              key={`t${i}`}
              dataKey={`s${i}`}
              name={single ? "training loss" : `${s.name} training`}
              stroke={COLORS[i % COLORS.length]}
              strokeWidth={1.5}
              dot={false}
              connectNulls
              isAnimationActive={false}
              type="linear"
            />
          ))}
          {series.map((s, i) =>
            s.points.some((p) => p.validationLoss !== undefined) ? (
            <Line
              key={`v${i}`}
              dataKey={`s${i}v`}
              name={single ? "validation loss" : `${s.name} validation`}
              stroke={COLORS[(i + (single ? 2 : 0)) % COLORS.length]}
              strokeDasharray="5 3"
              strokeWidth={1.5}
              dot={{ r: 3 }}
              connectNulls
              isAnimationActive={false}
              type="linear"
            />
            ) : null,
          )}
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}
