/** Pure helpers of the training pages: states, progress, ETA, loss points and config diffs. */
import type { components } from "@/api/schema";

type Schemas = components["schemas"];
export type TrainingJob = Schemas["mlxhub.v1.TrainingJob"];
export type TrainingConfig = Schemas["mlxhub.v1.TrainingConfig"];
export type TrainingProgress = Schemas["mlxhub.v1.TrainingProgress"];
export type WatchTrainingJobResponse = Schemas["mlxhub.v1.WatchTrainingJobResponse"];
export type JobState = Schemas["mlxhub.v1.TrainingJobState"];
export type FieldBounds = Schemas["mlxhub.v1.FieldBounds"];

export const JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export type JobStateName = (typeof JOB_STATES)[number];

export function stateName(state: JobState | undefined): JobStateName | "unknown" {
  const name = (state ?? "").replace("TRAINING_JOB_STATE_", "").toLowerCase();
  return (JOB_STATES as readonly string[]).includes(name) ? (name as JobStateName) : "unknown";
}

export function stateEnum(name: JobStateName): JobState {
  return `TRAINING_JOB_STATE_${name.toUpperCase()}` as JobState;
}

/** Which of cancel / resume / retry the trainer accepts for a job as it is now (trainer_svc's rules). */
export function allowedActions(job: TrainingJob): { cancel: boolean; resume: boolean; retry: boolean } {
  const state = stateName(job.state);
  const ended = state === "cancelled" || state === "failed";
  return {
    // A running job that was already asked to stop has nothing left to cancel.
    cancel: state === "queued" || (state === "running" && !job.cancelRequested),
    resume: ended && (job.checkpoints?.length ?? 0) > 0,
    retry: ended,
  };
}

export function num(value: string | number | undefined): number {
  if (value === undefined || value === "") return 0;
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** Fraction done in [0, 1]. */
export function fraction(job: TrainingJob): number {
  const total = num(job.totalSteps);
  if (!total) return 0;
  return Math.min(1, Math.max(0, num(job.step) / total));
}

/**
 * Seconds left for a running job, from its pace since it started (a resumed job
 * counts its steps from the checkpoint, so `fromStep` can be given), or undefined.
 */
export function etaSeconds(step: number, total: number, startTime: string | undefined, now: number, fromStep = 0): number | undefined {
  if (!startTime || !total || step <= fromStep || step >= total) return undefined;
  const elapsed = (now - new Date(startTime).getTime()) / 1000;
  if (!(elapsed > 0)) return undefined;
  const rate = (step - fromStep) / elapsed;
  return (total - step) / rate;
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, "0")}m`;
}

/** `name/versions/N` → its page and a short label. */
export function versionLink(reference: string | undefined): { to: string; label: string } | undefined {
  const match = /^([^/@]+)\/versions\/(\d+)$/.exec(reference ?? "");
  const [, name = "", number = ""] = match ?? [];
  if (!match) return undefined;
  return { to: `/models/${encodeURIComponent(name)}/versions/${number}`, label: `${name} v${number}` };
}

/** The model name in a reference (`name`, `name@alias`, `name/versions/N`). */
export function modelName(reference: string | undefined): string {
  return (reference ?? "").split(/[@/]/)[0] ?? "";
}

export interface LossPoint {
  step: number;
  loss?: number;
  validationLoss?: number;
}

/**
 * Add one progress report to the curve. A step at or before the last one means a
 * resumed attempt took over from a checkpoint: what came after that step is dropped.
 */
export function addProgress(points: LossPoint[], progress: TrainingProgress): LossPoint[] {
  const step = num(progress.step);
  // Step 0 carries only the validation loss measured before training (zero values are omitted in JSON).
  const point: LossPoint = step > 0 ? { step, loss: progress.loss ?? 0 } : { step };
  if (progress.hasValidationLoss) point.validationLoss = progress.validationLoss ?? 0;
  if ((points.at(-1)?.step ?? -1) >= step) {
    let keep = points.length;
    while (keep > 0 && (points[keep - 1]?.step ?? -1) >= step) keep -= 1;
    points.length = keep;
  }
  points.push(point);
  return points;
}

/**
 * At most about `limit` points for display: every validation point is kept, the
 * training curve is thinned to every k-th point (plus the last), so a 10,000-step
 * run draws as fast as a short one.
 */
export function downsample(points: readonly LossPoint[], limit = 2000): LossPoint[] {
  if (points.length <= limit) return points.slice();
  const stride = Math.ceil(points.length / limit);
  return points.filter((p, i) => i % stride === 0 || i === points.length - 1 || p.validationLoss !== undefined);
}

/** The config fields in display order, with a label and how to show a value. */
export const CONFIG_FIELDS: readonly { key: keyof TrainingConfig; label: string }[] = [
  { key: "fineTuneType", label: "Fine-tune type" },
  { key: "rank", label: "Rank" },
  { key: "scale", label: "Scale" },
  { key: "dropout", label: "Dropout" },
  { key: "numLayers", label: "Layers" },
  { key: "learningRate", label: "Learning rate" },
  { key: "lrSchedule", label: "LR schedule" },
  { key: "warmupSteps", label: "Warmup steps" },
  { key: "iters", label: "Iterations" },
  { key: "epochs", label: "Epochs" },
  { key: "batchSize", label: "Batch size" },
  { key: "maxSeqLength", label: "Max sequence length" },
  { key: "maskPrompt", label: "Mask prompt" },
  { key: "gradAccumulationSteps", label: "Gradient accumulation steps" },
  { key: "validationSplit", label: "Validation split" },
  { key: "validationDataset", label: "Validation dataset" },
  { key: "stepsPerEval", label: "Steps per eval" },
  { key: "valBatches", label: "Validation batches" },
  { key: "stepsPerReport", label: "Steps per report" },
  { key: "saveEvery", label: "Save every" },
  { key: "seed", label: "Seed" },
  { key: "gradCheckpoint", label: "Gradient checkpointing" },
];

export function configValue(config: TrainingConfig | undefined, key: keyof TrainingConfig): string {
  const value = config?.[key];
  if (value === undefined || value === "") {
    if (key === "maskPrompt" || key === "gradCheckpoint") return "no";
    if (key === "validationDataset") return "—";
    return "0";
  }
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string") return value.replace(/^(FINE_TUNE_TYPE_|LEARNING_RATE_SCHEDULE_)/, "").toLowerCase();
  return String(value);
}

/** Keys whose values are not all the same across the configs. */
export function differingKeys(configs: readonly (TrainingConfig | undefined)[]): Set<keyof TrainingConfig> {
  const differ = new Set<keyof TrainingConfig>();
  for (const { key } of CONFIG_FIELDS) {
    const values = new Set(configs.map((c) => configValue(c, key)));
    if (values.size > 1) differ.add(key);
  }
  return differ;
}

/** "1 ≤ x ≤ 1024", "0 < x ≤ 1": a field's bounds as text. */
export function boundsText(bounds: FieldBounds | undefined): string {
  if (!bounds || (bounds.minimum === undefined && bounds.maximum === undefined)) return "";
  const low = bounds.minimum !== undefined ? `${bounds.minimum} ${bounds.exclusiveMinimum ? "<" : "≤"} ` : "";
  const high = bounds.maximum !== undefined ? ` ${bounds.exclusiveMaximum ? "<" : "≤"} ${bounds.maximum}` : "";
  return `${low}x${high}`;
}
