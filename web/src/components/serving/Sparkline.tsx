/** A small line over the last minutes: fixed size, no axes, no animation, so a refresh never moves the layout. */
import { Line, LineChart, YAxis } from "recharts";

export function Sparkline<T extends object>({
  data,
  dataKey,
  label,
  value,
  color = "var(--chart-1)",
}: {
  data: T[];
  dataKey: keyof T & string;
  label: string;
  value: string;
  color?: string;
}) {
  return (
    <div className="flex items-center justify-between gap-3" data-testid={`spark-${dataKey}`}>
      <div className="min-w-0">
        <div className="text-xs text-muted-foreground">{label}</div>
        <div className="text-sm font-medium tabular-nums">{value}</div>
      </div>
      <div aria-hidden="true" className="h-8 w-36 shrink-0">
        <LineChart width={144} height={32} data={data} margin={{ top: 2, right: 2, bottom: 2, left: 2 }} accessibilityLayer={false}>
          <YAxis hide domain={[0, "auto"]} />
          <Line
            type="monotone"
            dataKey={dataKey}
            stroke={color}
            strokeWidth={1.5}
            dot={{ r: 1.5, fill: color, strokeWidth: 0 }}
            connectNulls
            isAnimationActive={false}
          />
        </LineChart>
      </div>
    </div>
  );
}
