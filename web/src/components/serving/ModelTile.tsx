/** One loaded version: memory, streams, what it has served, its last minutes and the keep-alive countdown. */
import { Link } from "react-router";

import { Badge } from "@/components/ui/badge";
import { Card, CardContent, CardHeader } from "@/components/ui/card";
import { Sparkline } from "@/components/serving/Sparkline";
import { formatCount } from "@/lib/format";
import {
  formatCountdown,
  formatGb,
  formatMs,
  minutePoints,
  secondsToUnload,
  servedVersion,
  versionLink,
  type LoadedModel,
} from "@/pages/serving/servingLogic";

function Figure({ term, value, testId }: { term: string; value: string; testId: string }) {
  return (
    <div className="flex flex-col">
      <dt className="text-xs text-muted-foreground">{term}</dt>
      <dd className="text-base font-semibold whitespace-nowrap tabular-nums" data-testid={testId}>
        {value}
      </dd>
    </div>
  );
}

export function ModelTile({ model, now }: { model: LoadedModel; now: number }) {
  const version = servedVersion(model);
  const points = minutePoints(model);
  const last = [...points].reverse().find((p) => p.requests > 0);
  const streams = model.activeStreams ?? 0;
  const left = secondsToUnload(model, now);
  const titleId = `tile-${version.replace(/[^a-z0-9]/gi, "-")}`;
  return (
    <Card className="h-72 w-full" data-testid="model-tile" data-version={version} aria-labelledby={titleId}>
      <CardHeader>
        <div className="flex items-center justify-between gap-2">
          <h2 id={titleId} className="min-w-0 truncate text-base leading-none font-semibold">
            <Link to={versionLink(version)} className="hover:underline" title={version}>
              {version}
            </Link>
          </h2>
          {streams > 0 ? (
            <Badge className="shrink-0">streaming</Badge>
          ) : (
            <Badge variant="outline" className="shrink-0">
              idle
            </Badge>
          )}
        </div>
        <p className="truncate text-xs text-muted-foreground">
          {model.adapterVersion ? <>adapter on {model.modelVersion}</> : "base model"}
        </p>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        <dl className="grid grid-cols-[1.2fr_1fr_1fr_1fr] gap-2">
          <Figure term="Memory" value={formatGb(model.memoryGb)} testId="memory" />
          <Figure term="Streams" value={String(streams)} testId="active-streams" />
          <Figure term="Requests" value={formatCount(model.requestCount)} testId="requests-served" />
          <Figure term="Tokens" value={formatCount(model.generatedTokens)} testId="tokens-served" />
        </dl>
        <div className="flex flex-col gap-2" title="Sparklines: the last 15 minutes, one point per minute with traffic">
          <Sparkline data={points} dataKey="ttftMs" label="TTFT p50 (last busy minute)" value={formatMs(last?.ttftMs)} />
          <Sparkline
            data={points}
            dataKey="tokensPerSecond"
            label="Decode tokens/s (last busy minute)"
            value={last?.tokensPerSecond ? last.tokensPerSecond.toFixed(1) : "–"}
            color="var(--chart-2)"
          />
        </div>
        <p className="text-xs text-muted-foreground tabular-nums" data-testid="unload">
          {left === null ? (
            "in use: stays loaded"
          ) : (
            <span title={model.unloadTime}>idle: unloads in {formatCountdown(left)}</span>
          )}
        </p>
      </CardContent>
    </Card>
  );
}
