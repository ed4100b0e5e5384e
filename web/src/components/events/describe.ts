/**
 * What a registry event means in words ("alice created model demo") and where
 * its resource lives in the dashboard. Pure functions, so the overview's feed,
 * the audit page and tests all describe events the same way.
 */
import type { HubEvent } from "@/api/types";

export interface EventDescription {
  /** Who did it: the event's principal ("anonymous" when the hub runs without keys). */
  actor: string;
  /** What they did, e.g. "created model" or "moved alias prod of". */
  action: string;
  /** The resource acted on, e.g. "demo" or "demo v3". */
  target: string;
  /** Words after the resource, e.g. "to v3" for an alias move. */
  after?: string;
  /** Dashboard path of the resource, when it has a page. */
  href?: string;
  /** A short extra, e.g. "from v1" for an alias move or the fields an update changed. */
  detail?: string;
}

type Data = Record<string, unknown>;

/** The name part of an aggregate handle such as "model/demo". */
export function aggregateName(event: HubEvent): string {
  const handle = event.aggregate ?? "";
  const slash = handle.indexOf("/");
  return slash >= 0 ? handle.slice(slash + 1) : handle;
}

/** A Struct number arrives as a JSON number (or, defensively, a string); versions are whole numbers. */
function versionOf(value: unknown): string | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return String(Math.trunc(value));
  if (typeof value === "string" && /^\d+$/.test(value)) return value;
  return undefined;
}

export function modelPath(name: string): string {
  return `/models/${encodeURIComponent(name)}`;
}

export function versionPath(model: string, version: string): string {
  return `${modelPath(model)}/versions/${encodeURIComponent(version)}`;
}

export function datasetPath(name: string): string {
  return `/datasets/${encodeURIComponent(name)}`;
}

/** Turn an event into who / did what / to which resource, with the resource's page. */
export function describeEvent(event: HubEvent): EventDescription {
  const actor = event.metadata?.principal || "someone";
  const name = aggregateName(event);
  const data = (event.data ?? {}) as Data;
  const kind = (event.aggregateType ?? event.aggregate?.split("/")[0] ?? "").toLowerCase();

  switch (event.type) {
    case "ModelRegistered":
      return { actor, action: "created model", target: name, href: modelPath(name) };
    case "ModelUpdated": {
      const changes = data.changes && typeof data.changes === "object" ? Object.keys(data.changes as Data) : [];
      return {
        actor,
        action: "updated model",
        target: name,
        href: modelPath(name),
        detail: changes.length ? changes.map((c) => c.replace(/_/g, " ")).join(", ") : undefined,
      };
    }
    case "ModelVersionCreated": {
      const version = versionOf(data.version);
      const lineage = (data.lineage ?? {}) as Data;
      const job = typeof lineage.training_job === "string" && lineage.training_job ? lineage.training_job : undefined;
      return {
        actor,
        action: "created version",
        target: version ? `${name} v${version}` : name,
        href: version ? versionPath(name, version) : modelPath(name),
        detail: job ? `trained by job ${job}` : undefined,
      };
    }
    case "AliasMoved": {
      const alias = typeof data.alias === "string" ? data.alias : "?";
      const version = versionOf(data.version);
      const previous = versionOf(data.previous_version);
      return {
        actor,
        action: `moved alias ${alias} of`,
        target: name,
        after: version ? `to v${version}` : undefined,
        href: modelPath(name),
        detail: previous && previous !== "0" ? `from v${previous}` : undefined,
      };
    }
    case "DatasetRegistered":
      return { actor, action: "registered dataset", target: name, href: datasetPath(name) };
    default: {
      const href = kind === "model" ? modelPath(name) : kind === "dataset" ? datasetPath(name) : undefined;
      return { actor, action: `${event.type ?? "changed"} on ${kind || "resource"}`, target: name, href };
    }
  }
}

/** The description as one sentence: "alice created model demo". */
export function eventSentence(event: HubEvent): string {
  const d = describeEvent(event);
  return [d.actor, d.action, d.target, d.after].filter(Boolean).join(" ") + (d.detail ? ` (${d.detail})` : "");
}

/** "just now", "5 s ago", "3 min ago", "2 h ago", "4 d ago"; past times only (a future one reads "just now"). */
export function relativeTime(iso: string | undefined, now: number = Date.now()): string {
  if (!iso) return "";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  const seconds = Math.floor((now - then) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days < 60) return `${days} d ago`;
  return new Date(then).toLocaleDateString();
}
