import { Ban, CheckCircle2, CircleDashed, Loader2, XCircle } from "lucide-react";

import { Badge } from "@/components/ui/badge";
import { type JobState, stateName } from "@/components/training/trainingLogic";

/** A job's state as a word with an icon (never colour alone). */
export function JobStateBadge({ state, cancelRequested }: { state: JobState | undefined; cancelRequested?: boolean }) {
  const name = stateName(state);
  const text = name === "running" && cancelRequested ? "cancelling" : name;
  switch (name) {
    case "succeeded":
      return (
        <Badge variant="success">
          <CheckCircle2 aria-hidden="true" /> {text}
        </Badge>
      );
    case "failed":
      return (
        <Badge variant="outline" className="border-destructive/50 text-destructive">
          <XCircle aria-hidden="true" /> {text}
        </Badge>
      );
    case "running":
      return (
        <Badge variant="outline" className="border-primary/40 text-primary">
          <Loader2 aria-hidden="true" className="motion-safe:animate-spin" /> {text}
        </Badge>
      );
    case "cancelled":
      return (
        <Badge variant="secondary">
          <Ban aria-hidden="true" /> {text}
        </Badge>
      );
    default:
      return (
        <Badge variant="outline">
          <CircleDashed aria-hidden="true" /> {text}
        </Badge>
      );
  }
}

/** Step / total as a small ring (with the numbers beside it for screen readers and tests). */
export function ProgressRing({ value, label }: { value: number; label: string }) {
  const r = 8;
  const c = 2 * Math.PI * r;
  return (
    <span className="inline-flex items-center gap-2" role="img" aria-label={label}>
      <svg width="20" height="20" viewBox="0 0 20 20" aria-hidden="true" className="-rotate-90">
        <circle cx="10" cy="10" r={r} fill="none" stroke="var(--border)" strokeWidth="3" />
        <circle cx="10" cy="10" r={r} fill="none" stroke="var(--primary)" strokeWidth="3" strokeDasharray={`${c * value} ${c}`} />
      </svg>
    </span>
  );
}
