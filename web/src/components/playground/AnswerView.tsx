/** One answer: its text as it streams, then the exact version that produced it and its figures. */
import { ArrowUpCircle, Loader2 } from "lucide-react";
import { Link } from "react-router";

import { CopyButton } from "@/components/CopyButton";
import { parseVersionName } from "@/components/playground/PromoteDialog";
import { Button } from "@/components/ui/button";
import type { Answer } from "@/lib/conversations";
import { cn } from "@/lib/utils";

function Figure({ label, value }: { label: string; value: string }) {
  return (
    <div className="flex gap-1">
      <dt className="text-muted-foreground">{label}</dt>
      <dd className="font-mono text-foreground">{value}</dd>
    </div>
  );
}

export function AnswerView({
  answer,
  streaming,
  column,
  columns,
  onPromote,
}: {
  answer: Answer;
  streaming: boolean;
  column: number;
  columns: number;
  onPromote?: (modelVersion: string) => void;
}) {
  const state = streaming ? "streaming" : answer.error ? "error" : answer.stopped ? "stopped" : "done";
  const u = answer.usage;
  const version = answer.modelVersion ? parseVersionName(answer.modelVersion) : undefined;
  const side = columns > 1 ? (column === 0 ? "A" : "B") : "";
  return (
    <article
      className={cn("grid min-w-0 content-start gap-2 rounded-lg border bg-card p-3", answer.error && "border-destructive/50")}
      data-testid="answer"
      data-column={column}
      data-state={state}
      aria-label={`Answer${side ? ` ${side}` : ""} from ${answer.reference}`}
      aria-busy={streaming}
    >
      <header className="flex items-center justify-between gap-2 text-xs text-muted-foreground">
        <span className="truncate font-mono">
          {side && <span className="mr-1 font-semibold text-foreground">{side}</span>}
          {answer.reference}
        </span>
        <span className="flex items-center gap-1">
          {streaming && <Loader2 className="size-3.5 animate-spin" aria-hidden />}
          {!streaming && answer.text && <CopyButton value={answer.text} label={`Copy answer${side ? ` ${side}` : ""}`} />}
        </span>
      </header>
      {answer.error ? (
        <p className="text-sm text-destructive" role="alert">
          {answer.error}
        </p>
      ) : (
        <div className="text-sm leading-relaxed break-words whitespace-pre-wrap" data-testid="answer-text">
          {answer.text || (streaming ? <span className="text-muted-foreground">Waiting for the first token…</span> : "")}
        </div>
      )}
      {(answer.modelVersion || u || answer.stopped || answer.finishReason) && (
        <dl className="flex flex-wrap gap-x-4 gap-y-1 border-t pt-2 text-xs" data-testid="answer-figures">
          {answer.modelVersion && (
            <div className="flex gap-1">
              <dt className="text-muted-foreground">Version</dt>
              <dd>
                {version ? (
                  <Link
                    to={`/models/${encodeURIComponent(version[0])}/versions/${version[1]}`}
                    className="font-mono text-primary underline-offset-4 hover:underline"
                  >
                    {answer.modelVersion}
                  </Link>
                ) : (
                  <span className="font-mono">{answer.modelVersion}</span>
                )}
              </dd>
            </div>
          )}
          {u && (
            <>
              <Figure label="TTFT" value={`${Math.round(u.timeToFirstTokenMs ?? 0)} ms`} />
              <Figure label="Speed" value={`${(u.tokensPerSecond ?? 0).toFixed(1)} tok/s`} />
              <Figure label="Prompt tokens" value={String(u.promptTokens ?? 0)} />
              <Figure label="Cached" value={String(u.cachedPromptTokens ?? 0)} />
              <Figure label="Tokens" value={String(u.completionTokens ?? 0)} />
            </>
          )}
          {answer.stopped ? <Figure label="Finish" value="stopped" /> : answer.finishReason && <Figure label="Finish" value={answer.finishReason} />}
        </dl>
      )}
      {onPromote && answer.modelVersion && !streaming && !answer.error && (
        <div>
          <Button size="sm" variant="outline" onClick={() => onPromote(answer.modelVersion!)}>
            <ArrowUpCircle aria-hidden /> Promote this one{side ? ` (${side})` : ""}
          </Button>
        </div>
      )}
    </article>
  );
}
