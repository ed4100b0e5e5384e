/**
 * A version's lineage (GetLineage's answer) as a small graph the dashboard draws:
 * base model or version → training job (fed by the dataset) → version, repeated
 * up the chain of ancestors. Pure, so the shape is unit-tested apart from the page.
 */
import type { GetLineageResponse, Lineage } from "@/api/types";

export type LineageNodeKind = "external" | "version" | "job" | "dataset" | "current";

export interface LineageNode {
  id: string;
  kind: LineageNodeKind;
  /** What the node is, shown on it. */
  label: string;
  /** A second, smaller line (a short sha256, the job's MLflow run, ...). */
  detail?: string;
  /** Full text for the title attribute (the full sha256, the full job id). */
  title?: string;
  /** An in-app link (or none when there is nothing to open). */
  href?: string;
  /** Column, left to right: inputs come before what they produced. */
  layer: number;
  /** Position inside its column, top to bottom. */
  row: number;
}

export interface LineageEdge {
  from: string;
  to: string;
}

export interface LineageGraph {
  nodes: LineageNode[];
  edges: LineageEdge[];
}

import { shortSha } from "@/lib/format";

/** `name/versions/N` → its parts, or undefined for anything else (an external id, an alias). */
export function parseVersionRef(reference: string | undefined): { model: string; version: string } | undefined {
  const match = /^([^/@\s]+)\/versions\/(\d+)$/.exec(reference ?? "");
  return match?.[1] && match[2] ? { model: match[1], version: match[2] } : undefined;
}

export function versionHref(model: string, version: string | number): string {
  return `/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(String(version))}`;
}

function versionNode(reference: string): Omit<LineageNode, "layer" | "row"> {
  const ref = parseVersionRef(reference);
  if (ref) {
    return { id: `version:${ref.model}/versions/${ref.version}`, kind: "version", label: `${ref.model} v${ref.version}`, title: reference, href: versionHref(ref.model, ref.version) };
  }
  const alias = /^([^/@\s]+)@([^/@\s]+)$/.exec(reference);
  if (alias?.[1]) {
    return { id: `version:${reference}`, kind: "version", label: reference, title: reference, href: `/models/${encodeURIComponent(alias[1])}` };
  }
  return {
    id: `external:${reference}`,
    kind: "external",
    label: reference,
    detail: "external base model",
    title: reference,
    href: `/models?baseModel=${encodeURIComponent(reference)}`,
  };
}

/**
 * The graph of `response` (the lineage of `model` version `version`): one node per
 * base, job, dataset and version, ancestors chained above it (nearest last to the
 * left), each dataset and job shared when two versions name the same one.
 */
export function buildLineageGraph(response: GetLineageResponse | undefined, model: string, version: string | number): LineageGraph {
  const nodes = new Map<string, Omit<LineageNode, "layer" | "row">>();
  const edges: LineageEdge[] = [];
  const edgeKeys = new Set<string>();
  const add = (node: Omit<LineageNode, "layer" | "row">) => {
    if (!nodes.has(node.id)) nodes.set(node.id, node);
    return node.id;
  };
  const link = (from: string, to: string) => {
    const key = `${from}->${to}`;
    if (from === to || edgeKeys.has(key)) return;
    edgeKeys.add(key);
    edges.push({ from, to });
  };

  const current: Lineage = response?.lineage ?? {};
  const ancestors = response?.ancestors ?? [];
  // Oldest first; each entry knows the reference its child used for it.
  const chain: { lineage: Lineage; reference: string; isCurrent: boolean }[] = [];
  let childParent = current.parentVersion;
  const fromNearest: { lineage: Lineage; reference: string }[] = [];
  for (const ancestor of ancestors) {
    const reference = ancestor.model && ancestor.version ? `${ancestor.model}/versions/${ancestor.version}` : (childParent ?? "");
    fromNearest.push({ lineage: ancestor, reference });
    childParent = ancestor.parentVersion;
  }
  for (const entry of fromNearest.reverse()) chain.push({ ...entry, isCurrent: false });
  const currentRef = `${model}/versions/${version}`;
  chain.push({ lineage: current, reference: currentRef, isCurrent: true });

  for (const { lineage, reference, isCurrent } of chain) {
    const self = isCurrent
      ? add({ id: `version:${currentRef}`, kind: "current", label: `${model} v${version}`, title: currentRef, href: versionHref(model, version) })
      : add(versionNode(reference));
    const inputs: string[] = [];
    if (lineage.parentVersion) inputs.push(add(versionNode(lineage.parentVersion)));
    if (lineage.baseModel && lineage.baseModel !== lineage.parentVersion) {
      const base = versionNode(lineage.baseModel);
      if (base.kind === "external" && lineage.sourceSha256) {
        // An import names the file it read as its base: show that file's checksum.
        base.detail = `sha256 ${shortSha(lineage.sourceSha256)}`;
        base.title = [lineage.sourceUri, `sha256 ${lineage.sourceSha256}`].filter(Boolean).join(" ");
      }
      if (!inputs.includes(base.id)) inputs.push(add(base));
    }
    if (!inputs.length && lineage.sourceUri) {
      const file = lineage.sourceUri.replace(/\/+$/, "").split("/").pop() || lineage.sourceUri;
      inputs.push(
        add({
          id: `source:${lineage.sourceUri}`,
          kind: "external",
          label: file,
          detail: lineage.sourceSha256 ? `sha256 ${shortSha(lineage.sourceSha256)}` : `${lineage.source || "imported"} from`,
          title: [lineage.sourceUri, lineage.sourceSha256 && `sha256 ${lineage.sourceSha256}`].filter(Boolean).join(" "),
        }),
      );
    }
    let dataset: string | undefined;
    if (lineage.dataset) {
      const registered = isCurrent ? response?.dataset : undefined;
      const sha = lineage.datasetSha256 ?? registered?.sha256 ?? "";
      dataset = add({
        id: `dataset:${lineage.dataset}@${sha}`,
        kind: "dataset",
        label: lineage.dataset,
        detail: sha ? `sha256 ${shortSha(sha)}` : "sha256 not recorded",
        title: sha ? `sha256 ${sha}` : undefined,
        href: `/datasets/${encodeURIComponent(lineage.dataset)}`,
      });
    }
    if (lineage.trainingJob) {
      const job = add({
        id: `job:${lineage.trainingJob}`,
        kind: "job",
        label: lineage.trainingJob.slice(0, 8),
        detail: lineage.mlflowRunId ? `MLflow run ${lineage.mlflowRunId.slice(0, 8)}` : undefined,
        title: `training job ${lineage.trainingJob}`,
        href: `/training/${encodeURIComponent(lineage.trainingJob)}`,
      });
      for (const input of inputs) link(input, job);
      if (dataset) link(dataset, job);
      link(job, self);
    } else {
      for (const input of inputs) link(input, self);
      if (dataset) link(dataset, self);
    }
  }

  return { nodes: layout([...nodes.values()], edges), edges };
}

/**
 * Columns by longest path from a source; then each source moves right to sit just
 * left of the first node it feeds (so a dataset stands beside the version its job
 * started from rather than at the far left).
 */
function layout(nodes: Omit<LineageNode, "layer" | "row">[], edges: LineageEdge[]): LineageNode[] {
  const incoming = new Map<string, string[]>();
  const outgoing = new Map<string, string[]>();
  for (const edge of edges) {
    incoming.set(edge.to, [...(incoming.get(edge.to) ?? []), edge.from]);
    outgoing.set(edge.from, [...(outgoing.get(edge.from) ?? []), edge.to]);
  }
  const layer = new Map<string, number>();
  const depth = (id: string, visiting: Set<string>): number => {
    const known = layer.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // the registry refuses cycles; stop rather than loop
    visiting.add(id);
    const inputs = incoming.get(id) ?? [];
    const value = inputs.length ? Math.max(...inputs.map((input) => depth(input, visiting) + 1)) : 0;
    layer.set(id, value);
    return value;
  };
  for (const node of nodes) depth(node.id, new Set());
  for (const node of nodes) {
    const targets = outgoing.get(node.id) ?? [];
    if (incoming.has(node.id) || !targets.length) continue;
    layer.set(node.id, Math.min(...targets.map((target) => layer.get(target) ?? 1)) - 1);
  }
  const rows = new Map<number, number>();
  return nodes.map((node) => {
    const column = layer.get(node.id) ?? 0;
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    return { ...node, layer: column, row };
  });
}

/** Ready-to-run calls of a model reference against the hub at `origin`: curl, the OpenAI Python client, the CLI. */
export function usageSnippets(origin: string, reference: string, withKey: boolean): { id: string; label: string; code: string }[] {
  const prompt = "What is the capital of France?";
  const body = JSON.stringify({ model: reference, messages: [{ role: "user", content: prompt }], sampling: { maxTokens: 64 } });
  const curlAuth = withKey ? ` \\\n  -H "Authorization: Bearer $MLXHUB_API_KEY"` : "";
  const curl = `curl -s ${origin}/v1/generate${curlAuth} \\\n  -d '${body.replaceAll("'", "'\\''")}'`;
  const python = [
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${JSON.stringify(`${origin}/openai/v1`)}, api_key=os.environ.get("MLXHUB_API_KEY", "unused"))`,
    "answer = client.chat.completions.create(",
    `    model=${JSON.stringify(reference)},`,
    `    messages=[{"role": "user", "content": ${JSON.stringify(prompt)}}],`,
    ")",
    "print(answer.choices[0].message.content)",
  ].join("\n");
  const cli = `${withKey ? "MLXHUB_API_KEY=... " : ""}mlx-hub generate ${reference} ${JSON.stringify(prompt)}`;
  return [
    { id: "curl", label: "curl", code: curl },
    { id: "python", label: "Python", code: python },
    { id: "cli", label: "CLI", code: cli },
  ];
}
