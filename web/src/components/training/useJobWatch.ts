/**
 * Follow a training job with `GET /v1/training/jobs/{id}:watch`. The stream
 * replays the job's progress from its first step, then follows it live and ends
 * with the final job; so every (re)connection rebuilds the curve from scratch and
 * nothing is missed. Reports arriving in a burst (a 10,000-step replay) are
 * applied at most every 250 ms, so the chart redraws a few times a second at most.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";

import { ApiError } from "@/api/errors";
import { readStream } from "@/api/stream";
import {
  addProgress,
  type LossPoint,
  stateName,
  type TrainingJob,
  type TrainingProgress,
  type WatchTrainingJobResponse,
} from "@/components/training/trainingLogic";

export interface JobWatch {
  points: LossPoint[];
  latest?: TrainingProgress;
  /** The stream is open (replaying or following). */
  live: boolean;
  error?: unknown;
}

const FLUSH_MS = 250;

/** `generation` restarts the watch (after a resume, which makes an ended job run again). */
export function useJobWatch(id: string, generation: number): JobWatch {
  const queryClient = useQueryClient();
  const [watch, setWatch] = useState<JobWatch>({ points: [], live: false });
  const buffer = useRef<{ points: LossPoint[]; latest?: TrainingProgress }>({ points: [] });

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      if (controller.signal.aborted) return;
      setWatch((w) => ({ ...w, points: buffer.current.points.slice(), latest: buffer.current.latest }));
    };
    const schedule = () => {
      timer ??= setTimeout(flush, FLUSH_MS);
    };

    const run = async () => {
      let attempt = 0;
      while (!controller.signal.aborted) {
        buffer.current = { points: [] };
        let ended = false;
        try {
          await readStream<WatchTrainingJobResponse>(`/v1/training/jobs/${encodeURIComponent(id)}:watch`, {
            signal: controller.signal,
            onOpen: () => setWatch((w) => ({ ...w, live: true, error: undefined })),
            onResult: (result) => {
              attempt = 0;
              if (result.progress) {
                addProgress(buffer.current.points, result.progress);
                buffer.current.latest = result.progress;
                schedule();
              }
              if (result.job) {
                queryClient.setQueryData(["training-job", id], { job: result.job });
                const state = stateName(result.job.state);
                ended = state === "succeeded" || state === "failed" || state === "cancelled";
              }
            },
          });
        } catch (error) {
          if (controller.signal.aborted) return;
          setWatch((w) => ({ ...w, live: false, error }));
          // A job that does not exist (or a bad id) will not appear by reconnecting; a 401 may, after sign-in.
          if (error instanceof ApiError && error.httpStatus >= 400 && error.httpStatus < 500 && ![401, 429].includes(error.httpStatus)) return;
        }
        if (controller.signal.aborted) return;
        if (timer !== undefined) clearTimeout(timer);
        flush();
        if (ended) {
          setWatch((w) => ({ ...w, live: false }));
          void queryClient.invalidateQueries({ queryKey: ["training-jobs"] });
          return;
        }
        attempt += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** (attempt - 1), 5000)));
      }
    };
    void run();
    return () => {
      controller.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [id, generation, queryClient]);

  return watch;
}

export type { TrainingJob };
