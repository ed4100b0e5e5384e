import { describe, expect, it } from "vitest";

import type { GetLineageResponse } from "@/api/types";
import { diffFiles, diffMetrics, diffRecords, formatDelta } from "@/lib/diff";
import { formatBytes, shortSha } from "@/lib/format";
import { buildLineageGraph, parseVersionRef, usageSnippets } from "@/lib/lineage";

const SHA = "ab".repeat(32);
const byId = (graph: ReturnType<typeof buildLineageGraph>) => Object.fromEntries(graph.nodes.map((n) => [n.id, n]));
const edgeSet = (graph: ReturnType<typeof buildLineageGraph>) => graph.edges.map((e) => `${e.from} -> ${e.to}`).sort();

describe("buildLineageGraph", () => {
  it("draws a registered full version from an external base", () => {
    const response: GetLineageResponse = {
      lineage: { model: "demo", version: "1", baseModel: "HuggingFaceTB/SmolLM2-135M-Instruct", source: "registered" },
    };
    const graph = buildLineageGraph(response, "demo", "1");
    expect(graph.nodes).toHaveLength(2);
    const nodes = byId(graph);
    const base = nodes["external:HuggingFaceTB/SmolLM2-135M-Instruct"];
    expect(base?.kind).toBe("external");
    expect(base?.label).toBe("HuggingFaceTB/SmolLM2-135M-Instruct");
    expect(base?.href).toBe("/models?baseModel=HuggingFaceTB%2FSmolLM2-135M-Instruct");
    expect(nodes["version:demo/versions/1"]).toMatchObject({ kind: "current", href: "/models/demo/versions/1", layer: 1 });
    expect(base?.layer).toBe(0);
    expect(edgeSet(graph)).toEqual(["external:HuggingFaceTB/SmolLM2-135M-Instruct -> version:demo/versions/1"]);
  });

  it("draws a trained adapter: base version and dataset feed the job, the job made the version", () => {
    const response: GetLineageResponse = {
      lineage: {
        model: "demo", version: "2", baseModel: "demo/versions/1", parentVersion: "demo/versions/1",
        dataset: "chat", datasetSha256: SHA, trainingJob: "0f1e2d3c-aaaa-bbbb-cccc-000000000000", mlflowRunId: "run1234567",
        source: "trained",
      },
      ancestors: [{ model: "demo", version: "1", baseModel: "hf/base" }],
      dataset: { name: "chat", sha256: SHA },
    };
    const graph = buildLineageGraph(response, "demo", "2");
    const nodes = byId(graph);
    const job = nodes["job:0f1e2d3c-aaaa-bbbb-cccc-000000000000"];
    expect(job).toMatchObject({ kind: "job", label: "0f1e2d3c", href: "/training/0f1e2d3c-aaaa-bbbb-cccc-000000000000" });
    expect(job?.detail).toContain("run12345");
    const dataset = nodes[`dataset:chat@${SHA}`];
    expect(dataset).toMatchObject({ kind: "dataset", label: "chat", href: "/datasets/chat", title: `sha256 ${SHA}` });
    expect(dataset?.detail).toBe(`sha256 ${SHA.slice(0, 12)}`);
    expect(nodes["version:demo/versions/1"]).toMatchObject({ kind: "version", label: "demo v1", href: "/models/demo/versions/1" });
    expect(edgeSet(graph)).toEqual([
      `dataset:chat@${SHA} -> job:0f1e2d3c-aaaa-bbbb-cccc-000000000000`,
      "external:hf/base -> version:demo/versions/1",
      "job:0f1e2d3c-aaaa-bbbb-cccc-000000000000 -> version:demo/versions/2",
      "version:demo/versions/1 -> job:0f1e2d3c-aaaa-bbbb-cccc-000000000000",
    ]);
    // Left to right: hf/base, then v1 with the dataset beside it, then the job, then v2.
    expect(nodes["external:hf/base"]?.layer).toBe(0);
    expect(nodes["version:demo/versions/1"]?.layer).toBe(1);
    expect(dataset?.layer).toBe(1);
    expect(job?.layer).toBe(2);
    expect(nodes["version:demo/versions/2"]?.layer).toBe(3);
    // Two nodes in one column get distinct rows.
    expect(new Set([nodes["version:demo/versions/1"]?.row, dataset?.row]).size).toBe(2);
  });

  it("chains ancestors, nearest first in the response, oldest leftmost in the graph", () => {
    const response: GetLineageResponse = {
      lineage: { model: "c", version: "1", parentVersion: "b/versions/4", trainingJob: "job-3", dataset: "d2", datasetSha256: "22" },
      ancestors: [
        { model: "b", version: "4", parentVersion: "a/versions/2", trainingJob: "job-2", dataset: "d1", datasetSha256: "11" },
        { model: "a", version: "2", baseModel: "org/foundation" },
      ],
    };
    const graph = buildLineageGraph(response, "c", "1");
    const nodes = byId(graph);
    const layers = ["external:org/foundation", "version:a/versions/2", "job:job-2", "version:b/versions/4", "job:job-3", "version:c/versions/1"].map(
      (id) => nodes[id]?.layer,
    );
    expect(layers).toEqual([0, 1, 2, 3, 4, 5]);
    expect(nodes["dataset:d1@11"]?.layer).toBe(1);
    expect(nodes["dataset:d2@22"]?.layer).toBe(3);
    expect(graph.edges).toHaveLength(7);
  });

  it("copes with missing fields: no lineage, no sha, ancestors without names", () => {
    const empty = buildLineageGraph(undefined, "m", 3);
    expect(empty.nodes).toEqual([
      { id: "version:m/versions/3", kind: "current", label: "m v3", title: "m/versions/3", href: "/models/m/versions/3", layer: 0, row: 0 },
    ]);
    expect(empty.edges).toEqual([]);

    const partial = buildLineageGraph(
      { lineage: { parentVersion: "m/versions/1", dataset: "d" }, ancestors: [{}] },
      "m",
      "2",
    );
    const nodes = byId(partial);
    expect(nodes["dataset:d@"]?.detail).toBe("sha256 not recorded");
    expect(nodes["dataset:d@"]?.title).toBeUndefined();
    // The unnamed ancestor takes the reference its child used for it.
    expect(nodes["version:m/versions/1"]?.kind).toBe("version");
    expect(partial.nodes).toHaveLength(3);
  });
});

describe("buildLineageGraph for imports", () => {
  it("shows the imported file with its sha256 as the base", () => {
    const gguf = buildLineageGraph(
      { lineage: { baseModel: "tiny.Q4_0.gguf", source: "imported", sourceUri: "file:///models/tiny.Q4_0.gguf", sourceSha256: SHA } },
      "tiny",
      "1",
    );
    const base = byId(gguf)["external:tiny.Q4_0.gguf"];
    expect(base).toMatchObject({ kind: "external", label: "tiny.Q4_0.gguf", detail: `sha256 ${SHA.slice(0, 12)}` });
    expect(base?.title).toBe(`file:///models/tiny.Q4_0.gguf sha256 ${SHA}`);
    expect(gguf.edges).toEqual([{ from: "external:tiny.Q4_0.gguf", to: "version:tiny/versions/1" }]);

    const directory = buildLineageGraph({ lineage: { source: "imported", sourceUri: "file:///models/llama-mlx/" } }, "llama", "1");
    const source = byId(directory)["source:file:///models/llama-mlx/"];
    expect(source).toMatchObject({ kind: "external", label: "llama-mlx", detail: "imported from" });
    expect(source?.href).toBeUndefined();
    expect(directory.edges).toHaveLength(1);
  });
});

describe("helpers", () => {
  it("formats sizes and hashes", () => {
    expect(formatBytes("0")).toBe("0 B");
    expect(formatBytes("1023")).toBe("1023 B");
    expect(formatBytes("1536")).toBe("1.5 KiB");
    expect(formatBytes(5 * 1024 * 1024)).toBe("5 MiB");
    expect(formatBytes("270000000")).toBe("257 MiB");
    expect(formatBytes(undefined)).toBe("0 B");
    expect(shortSha(SHA)).toBe("abababababab");
    expect(shortSha(undefined)).toBe("");
    expect(parseVersionRef("demo/versions/12")).toEqual({ model: "demo", version: "12" });
    expect(parseVersionRef("org/model")).toBeUndefined();
  });
});

describe("diffRecords", () => {
  it("takes the union of keys, sorted, and marks what differs", () => {
    const rows = diffRecords<unknown>(
      { learning_rate: 0.0001, iters: 100, nested: { b: 1, a: 2 }, only_a: true },
      { learning_rate: 0.0002, iters: 100, nested: { a: 2, b: 1 }, only_b: "x" },
    );
    expect(rows.map((r) => [r.key, r.status])).toEqual([
      ["iters", "same"],
      ["learning_rate", "changed"],
      ["nested", "same"],
      ["only_a", "only-a"],
      ["only_b", "only-b"],
    ]);
    expect(rows[1]).toMatchObject({ a: 0.0001, b: 0.0002 });
    expect(diffRecords(undefined, undefined)).toEqual([]);
  });

  it("gives metric deltas b − a", () => {
    const rows = diffMetrics({ loss: 1.5, acc: 0.5 }, { loss: 1.25, ppl: 3 });
    expect(rows.find((r) => r.key === "loss")?.delta).toBeCloseTo(-0.25);
    expect(rows.find((r) => r.key === "ppl")?.delta).toBeUndefined();
    expect(formatDelta(-0.25)).toBe("−0.25");
    expect(formatDelta(0.1 + 0.2)).toBe("+0.3");
    expect(formatDelta(0)).toBe("±0");
  });

  it("compares files by path and sha256", () => {
    const rows = diffFiles(
      [{ path: "config.json", sha256: "1" }, { path: "model.safetensors", sha256: "2" }, { path: "old.bin", sha256: "3" }],
      [{ path: "config.json", sha256: "1", sizeBytes: "9" }, { path: "model.safetensors", sha256: "9" }, { path: "new.bin", sha256: "4" }],
    );
    expect(rows.map((r) => [r.key, r.status])).toEqual([
      ["config.json", "same"],
      ["model.safetensors", "changed"],
      ["new.bin", "only-b"],
      ["old.bin", "only-a"],
    ]);
  });
});

describe("usageSnippets", () => {
  it("names the reference and the hub's routes in each snippet", () => {
    const [curl, python, cli] = usageSnippets("http://hub:8080", "demo@prod", false);
    expect(curl?.code).toContain("curl -s http://hub:8080/v1/generate");
    expect(JSON.parse(/-d '(.*)'/.exec(curl?.code ?? "")?.[1] ?? "{}")).toMatchObject({ model: "demo@prod" });
    expect(curl?.code).not.toContain("Authorization");
    expect(python?.code).toContain('base_url="http://hub:8080/openai/v1"');
    expect(python?.code).toContain('model="demo@prod"');
    expect(cli?.code).toBe('mlx-hub generate demo@prod "What is the capital of France?"');
    expect(usageSnippets("http://hub", "demo/versions/2", true)[0]?.code).toContain('Authorization: Bearer $MLXHUB_API_KEY');
  });
});
