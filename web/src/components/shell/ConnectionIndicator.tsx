/** Whether the live streams the open page follows are connected (hidden when it follows none). */
import { type OverallState, useConnectionState } from "@/lib/connection";
import { cn } from "@/lib/utils";

const SHOWN: Record<Exclude<OverallState, "idle">, { text: string; dot: string; title: string }> = {
  live: { text: "Live", dot: "bg-success animate-pulse", title: "Live updates are streaming" },
  connecting: { text: "Connecting", dot: "bg-warning", title: "Opening the live stream" },
  reconnecting: { text: "Reconnecting…", dot: "bg-warning animate-pulse", title: "The live stream dropped; resuming where it stopped" },
  stopped: { text: "Not live", dot: "bg-destructive", title: "The live stream was refused; reload the page to try again" },
};

export function ConnectionIndicator() {
  const state = useConnectionState();
  return (
    <div role="status" aria-live="polite" data-testid="connection-state" data-state={state}>
      {state !== "idle" && (
        <span
          title={SHOWN[state].title}
          className="inline-flex items-center gap-1.5 text-xs font-medium whitespace-nowrap text-muted-foreground"
        >
          <span aria-hidden className={cn("size-2 rounded-full", SHOWN[state].dot)} />
          {SHOWN[state].text}
        </span>
      )}
    </div>
  );
}
