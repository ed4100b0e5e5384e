/**
 * The lineage graph: fixed-size HTML cards laid out in columns (inputs left of what
 * they produced), with the arrows drawn by an SVG underneath. Every node is a link
 * with a text label; the arrows are also listed as text for screen readers.
 */
import { Box, Database, Dumbbell, Globe, Sparkles, type LucideIcon } from "lucide-react";
import { Link } from "react-router";

import type { LineageGraph as Graph, LineageNode, LineageNodeKind } from "@/lib/lineage";
import { cn } from "@/lib/utils";

const NODE_W = 216;
const NODE_H = 68;
const COL_GAP = 56;
const ROW_GAP = 16;

const KINDS: Record<LineageNodeKind, { name: string; icon: LucideIcon; accent: string }> = {
  external: { name: "Base model", icon: Globe, accent: "border-l-chart-5" },
  version: { name: "Version", icon: Box, accent: "border-l-chart-1" },
  job: { name: "Training job", icon: Dumbbell, accent: "border-l-chart-3" },
  dataset: { name: "Dataset", icon: Database, accent: "border-l-chart-2" },
  current: { name: "This version", icon: Sparkles, accent: "border-l-chart-4" },
};

export function LineageGraph({ graph, label = "Lineage" }: { graph: Graph; label?: string }) {
  const columns = Math.max(1, ...graph.nodes.map((n) => n.layer + 1));
  const perColumn = new Map<number, number>();
  for (const node of graph.nodes) perColumn.set(node.layer, (perColumn.get(node.layer) ?? 0) + 1);
  const rows = Math.max(1, ...perColumn.values());
  const width = columns * NODE_W + (columns - 1) * COL_GAP;
  const height = rows * NODE_H + (rows - 1) * ROW_GAP;

  const position = new Map<string, { x: number; y: number }>();
  for (const node of graph.nodes) {
    const inColumn = perColumn.get(node.layer) ?? 1;
    const offset = ((rows - inColumn) * (NODE_H + ROW_GAP)) / 2;
    position.set(node.id, { x: node.layer * (NODE_W + COL_GAP), y: offset + node.row * (NODE_H + ROW_GAP) });
  }
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  // Left to right, then top to bottom: the reading order of the cards.
  const ordered = [...graph.nodes].sort((a, b) => a.layer - b.layer || a.row - b.row);

  return (
    <figure className="m-0" aria-label={label}>
      <div className="overflow-x-auto pb-2">
        <div className="relative" style={{ width, height }} data-testid="lineage-graph">
          <svg className="absolute inset-0 overflow-visible text-muted-foreground" width={width} height={height} aria-hidden="true" focusable="false">
            <defs>
              <marker id="lineage-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                <path d="M 0 0 L 10 5 L 0 10 z" fill="currentColor" />
              </marker>
            </defs>
            {graph.edges.map((edge) => {
              const from = position.get(edge.from);
              const to = position.get(edge.to);
              if (!from || !to) return null;
              const x1 = from.x + NODE_W;
              const y1 = from.y + NODE_H / 2;
              const x2 = to.x - 2;
              const y2 = to.y + NODE_H / 2;
              const mid = (x1 + x2) / 2;
              return (
                <path
                  key={`${edge.from}->${edge.to}`}
                  d={`M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`}
                  fill="none"
                  stroke="currentColor"
                  strokeWidth={1.5}
                  markerEnd="url(#lineage-arrow)"
                />
              );
            })}
          </svg>
          <ul className="m-0 list-none p-0" aria-label={`${label} nodes`}>
            {ordered.map((node) => {
              const at = position.get(node.id) ?? { x: 0, y: 0 };
              return (
                <li key={node.id} className="absolute" style={{ left: at.x, top: at.y, width: NODE_W, height: NODE_H }}>
                  <NodeCard node={node} />
                </li>
              );
            })}
          </ul>
        </div>
      </div>
      {graph.edges.length > 0 && (
        <figcaption className="mt-2 text-xs text-muted-foreground">
          Arrows point from inputs to what they produced.
          <ul className="sr-only">
            {graph.edges.map((edge) => (
              <li key={`${edge.from}->${edge.to}`}>
                {byId.get(edge.from)?.label} → {byId.get(edge.to)?.label}
              </li>
            ))}
          </ul>
        </figcaption>
      )}
    </figure>
  );
}

function NodeCard({ node }: { node: LineageNode }) {
  const kind = KINDS[node.kind];
  const Icon = kind.icon;
  const body = (
    <>
      <span className="flex items-center gap-1.5 text-xs font-medium text-muted-foreground">
        <Icon aria-hidden className="size-3.5" />
        {kind.name}
      </span>
      <span className="truncate text-sm font-medium">{node.label}</span>
      {node.detail && <span className="truncate font-mono text-xs text-muted-foreground">{node.detail}</span>}
    </>
  );
  const classes = cn(
    "flex h-full w-full flex-col justify-center gap-0.5 overflow-hidden rounded-lg border border-l-4 bg-card px-3 py-1.5 text-card-foreground shadow-xs",
    kind.accent,
    node.kind === "current" && "ring-2 ring-ring/40",
  );
  const title = [node.label, node.title].filter(Boolean).join(" — ");
  if (!node.href) {
    return (
      <div className={classes} title={title} data-kind={node.kind}>
        {body}
      </div>
    );
  }
  return (
    <Link
      to={node.href}
      className={cn(classes, "outline-none hover:bg-accent focus-visible:ring-[3px] focus-visible:ring-ring/50")}
      title={title}
      data-kind={node.kind}
      aria-current={node.kind === "current" ? "page" : undefined}
    >
      {body}
    </Link>
  );
}
