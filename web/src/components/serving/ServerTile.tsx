/** The inference server: what it runs on and how much of its memory budget the loaded versions hold. */
import { Card, CardContent, CardHeader } from "@/components/ui/card";
import { formatGb, type ServerInfo } from "@/pages/serving/servingLogic";

function Fact({ term, value }: { term: string; value: string | undefined }) {
  return (
    <div className="contents">
      <dt className="text-muted-foreground">{term}</dt>
      <dd className="truncate font-medium" title={value}>
        {value || "–"}
      </dd>
    </div>
  );
}

export function ServerTile({ info }: { info: ServerInfo }) {
  const budget = info.memoryBudgetGb ?? 0;
  const used = info.memoryUsedGb ?? 0;
  const free = info.memoryFreeGb ?? Math.max(0, budget - used);
  const percent = budget > 0 ? Math.min(100, (used / budget) * 100) : 0;
  return (
    <Card className="h-72 w-full" data-testid="server-tile" aria-labelledby="server-tile-title">
      <CardHeader>
        <h2 id="server-tile-title" className="text-base leading-none font-semibold">
          Inference server
        </h2>
      </CardHeader>
      <CardContent className="flex flex-col gap-4">
        <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
          <Fact term="Backend" value={info.backend} />
          <Fact term="BLAS" value={info.blas} />
          <Fact term="Weight format" value={info.weightFormat} />
          <Fact term="MLX" value={info.mlxVersion} />
          <Fact term="mlx-lm" value={info.mlxLmVersion} />
          <Fact term="Keep-alive" value={info.keepAliveSeconds ? `${Math.round(info.keepAliveSeconds)} s` : "0 s"} />
        </dl>
        <div className="flex flex-col gap-1.5">
          <div className="flex justify-between text-sm">
            <span className="text-muted-foreground" id="memory-label">
              Memory budget
            </span>
            <span className="font-medium tabular-nums" data-testid="memory-budget">
              {formatGb(budget)}
            </span>
          </div>
          <div
            role="meter"
            aria-labelledby="memory-label"
            aria-valuemin={0}
            aria-valuemax={budget}
            aria-valuenow={Number(used.toFixed(3))}
            aria-valuetext={`${formatGb(used)} used of ${formatGb(budget)}`}
            className="h-2 w-full overflow-hidden rounded-full bg-muted"
          >
            <div className="h-full rounded-full bg-primary" style={{ width: `${percent}%` }} />
          </div>
          <div className="flex justify-between text-xs text-muted-foreground tabular-nums">
            <span data-testid="memory-used">{formatGb(used)} used</span>
            <span data-testid="memory-free">{formatGb(free)} free</span>
          </div>
        </div>
      </CardContent>
    </Card>
  );
}
