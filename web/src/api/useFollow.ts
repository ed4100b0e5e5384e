/**
 * Follow a gateway stream for as long as a component is mounted (and `enabled`),
 * resuming after the last position on a dropped connection, and reporting its
 * state to the top bar's connection indicator.
 */
import { useEffect, useId, useRef, useState } from "react";

import { type ConnectionState, follow, type Query } from "@/api/stream";
import { useAuthState } from "@/lib/useAuth";
import { connections } from "@/lib/connection";

export interface UseFollowOptions<T> {
  path: string;
  /** Query for a (re)connection; must include the resume position it is given. */
  query: (afterPosition: string) => Query;
  positionOf: (result: T) => string | undefined;
  onResult: (result: T) => void;
  /** Where to start (exclusive); "0" for the beginning. Changing it restarts the stream. */
  afterPosition?: string;
  enabled?: boolean;
  /** Changing this restarts the stream (e.g. a JSON string of the filters). */
  key?: string;
}

export function useFollow<T>(options: UseFollowOptions<T>): { state: ConnectionState; error: unknown } {
  const id = useId();
  const [state, setState] = useState<ConnectionState>("connecting");
  const [error, setError] = useState<unknown>(undefined);
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });
  const { key: apiKey } = useAuthState();
  const enabled = options.enabled ?? true;

  useEffect(() => {
    if (!enabled) return;
    // The stream reports "stopped" after it is stopped; by then this component has let go of it,
    // and the top bar must not keep showing a stream nobody follows.
    let active = true;
    const stream = follow<T>({
      path: latest.current.path,
      afterPosition: latest.current.afterPosition,
      query: (after) => latest.current.query(after),
      positionOf: (r) => latest.current.positionOf(r),
      onResult: (r) => latest.current.onResult(r),
      onState: (s, e) => {
        if (!active) return;
        setState(s);
        setError(e);
        connections.report(id, s);
      },
    });
    return () => {
      active = false;
      stream.stop();
      connections.remove(id);
    };
  }, [id, enabled, options.path, options.afterPosition, options.key, apiKey]);

  return { state, error };
}
