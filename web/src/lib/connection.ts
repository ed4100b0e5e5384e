/**
 * The state of every live stream the open pages follow, summed up for the top
 * bar: "live" when all are connected, "reconnecting" when any is retrying.
 */
import { useSyncExternalStore } from "react";

import type { ConnectionState } from "@/api/stream";

export type OverallState = "idle" | "connecting" | "live" | "reconnecting" | "stopped";

const states = new Map<string, ConnectionState>();
const listeners = new Set<() => void>();
let overall: OverallState = "idle";

function summarize(): OverallState {
  const values = [...states.values()];
  if (values.length === 0) return "idle";
  if (values.includes("reconnecting")) return "reconnecting";
  if (values.includes("stopped")) return "stopped";
  if (values.includes("connecting")) return "connecting";
  return "live";
}

export const connections = {
  report(id: string, state: ConnectionState) {
    states.set(id, state);
    overall = summarize();
    listeners.forEach((l) => l());
  },
  remove(id: string) {
    states.delete(id);
    overall = summarize();
    listeners.forEach((l) => l());
  },
  subscribe(listener: () => void) {
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  },
  get: () => overall,
};

export function useConnectionState(): OverallState {
  return useSyncExternalStore(connections.subscribe, connections.get, connections.get);
}
