/**
 * Ctrl/⌘+K: jump to a page, model, version, dataset or training job. Models and
 * datasets are searched on the server as you type (debounced); a version is
 * named as `name/versions/3`, `name@alias` or `name 3` and resolved by the API.
 * Enter opens the highlighted entry, which is the first one until you move.
 */
import { useQuery } from "@tanstack/react-query";
import { Boxes, Database, FlaskConical, GitCommitVertical, LoaderCircle, type LucideIcon } from "lucide-react";
import { type ReactNode, useEffect, useMemo, useState } from "react";
import { useNavigate } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import type { ModelVersion } from "@/api/types";
import { NAV } from "@/app/Sidebar";
import { jobMatches, parseVersionQuery } from "@/components/shell/palette";
import { Command, CommandEmpty, CommandGroup, CommandInput, CommandItem, CommandList } from "@/components/ui/command";
import { Dialog, DialogContent, DialogDescription, DialogTitle } from "@/components/ui/dialog";
import { useDebounced } from "@/lib/useDebounced";

export const PALETTE_DEBOUNCE_MS = 200;

interface Entry {
  value: string;
  to: string;
  icon: LucideIcon;
  label: ReactNode;
  hint?: ReactNode;
}

interface Group {
  heading: string;
  entries: Entry[];
}

const versionPath = (v: ModelVersion) => `/models/${encodeURIComponent(v.model ?? "")}/versions/${v.version ?? ""}`;
const shortKind = (kind?: string) => (kind === "MODEL_VERSION_KIND_ADAPTER" ? "adapter" : kind === "MODEL_VERSION_KIND_FULL" ? "full" : "");

/** Opens on Ctrl/⌘+K anywhere; `open`/`onOpenChange` let the top bar's button open it too. */
export function useCommandPaletteShortcut(onToggle: () => void) {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key.toLowerCase() === "k" && (event.metaKey || event.ctrlKey) && !event.altKey && !event.shiftKey) {
        event.preventDefault();
        onToggle();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onToggle]);
}

export function CommandPalette({ open, onOpenChange }: { open: boolean; onOpenChange: (open: boolean) => void }) {
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent className="top-[20%] translate-y-0 overflow-hidden p-0 sm:max-w-xl" showClose={false}>
        <DialogTitle className="sr-only">Command palette</DialogTitle>
        <DialogDescription className="sr-only">
          Go to a page, model, version, dataset or training job. Type a version as name/versions/3, name@alias or name 3.
        </DialogDescription>
        {open && <Palette onDone={() => onOpenChange(false)} />}
      </DialogContent>
    </Dialog>
  );
}

function Palette({ onDone }: { onDone: () => void }) {
  const navigate = useNavigate();
  const [search, setSearch] = useState("");
  const q = useDebounced(search.trim(), PALETTE_DEBOUNCE_MS);
  const ref = useMemo(() => parseVersionQuery(q), [q]);

  const models = useQuery({
    queryKey: ["palette", "models", q],
    queryFn: () =>
      call(api.GET("/v1/models", { params: { query: q ? { query: q, pageSize: 6 } : { pageSize: 5, orderBy: "update_time desc" } } })),
  });
  const datasets = useQuery({
    queryKey: ["palette", "datasets", q],
    queryFn: () => call(api.GET("/v1/datasets", { params: { query: q ? { query: q, pageSize: 5 } : { pageSize: 3, orderBy: "create_time desc" } } })),
  });
  const resolved = useQuery({
    queryKey: ["palette", "resolve", ref?.reference],
    queryFn: () => call(api.GET("/v1/models:resolve", { params: { query: { reference: ref!.reference! } } })),
    enabled: !!ref?.reference,
    retry: false,
  });
  const versions = useQuery({
    queryKey: ["palette", "versions", ref?.name],
    queryFn: () => call(api.GET("/v1/models/{name}/versions", { params: { path: { name: ref!.name }, query: { pageSize: 100 } } })),
    enabled: !!ref,
    retry: false,
  });
  const jobs = useQuery({
    queryKey: ["palette", "jobs"],
    queryFn: () => call(api.GET("/v1/training/jobs", { params: { query: { pageSize: 100 } } })),
    staleTime: 15_000,
  });

  const groups = useMemo<Group[]>(() => {
    const text = search.trim().toLowerCase();
    const out: Group[] = [];
    const exact: Entry[] = [];
    const resolvedVersion = ref?.reference ? resolved.data?.version : undefined;
    if (resolvedVersion) {
      exact.push({
        value: `resolved:${ref!.reference}`,
        to: versionPath(resolvedVersion),
        icon: GitCommitVertical,
        label: `${resolvedVersion.model}/versions/${resolvedVersion.version}`,
        hint: ref!.reference!.includes("@") ? ref!.reference : shortKind(resolvedVersion.kind),
      });
    }
    const pages = NAV.filter((p) => !text || p.label.toLowerCase().includes(text)).map((p) => ({
      value: `page:${p.to}`,
      to: p.to,
      icon: p.icon,
      label: p.label,
      hint: "page",
    }));
    const modelEntries = (models.data?.models ?? []).map((m) => ({
      value: `model:${m.name}`,
      to: `/models/${encodeURIComponent(m.name ?? "")}`,
      icon: Boxes,
      label: m.name,
      hint: m.latestVersion ? `latest v${m.latestVersion}` : "no versions",
    }));
    const recent = [...(versions.data?.versions ?? [])]
      .sort((a, b) => Number(b.version ?? 0) - Number(a.version ?? 0))
      .filter((v) => v.version !== resolvedVersion?.version)
      .slice(0, 5)
      .map((v) => ({
        value: `version:${v.model}/${v.version}`,
        to: versionPath(v),
        icon: GitCommitVertical,
        label: `${v.model}/versions/${v.version}`,
        hint: [shortKind(v.kind), ...(v.aliases ?? []).map((a) => `@${a}`)].filter(Boolean).join(" "),
      }));
    const datasetEntries = (datasets.data?.datasets ?? []).map((d) => ({
      value: `dataset:${d.name}`,
      to: `/datasets/${encodeURIComponent(d.name ?? "")}`,
      icon: Database,
      label: d.name,
    }));
    const jobEntries = text
      ? (jobs.data?.jobs ?? [])
          .filter((j) => jobMatches(j, text))
          .slice(0, 5)
          .map((j) => ({
            value: `job:${j.id}`,
            to: `/training/${encodeURIComponent(j.id ?? "")}`,
            icon: FlaskConical,
            label: <span className="font-mono text-xs">{(j.id ?? "").slice(0, 12)}</span>,
            hint: [j.model, (j.state ?? "").replace("TRAINING_JOB_STATE_", "").toLowerCase()].filter(Boolean).join(" · "),
          }))
      : [];

    if (pages.length && !exact.length) out.push({ heading: "Pages", entries: pages });
    // While the text is still changing, results for older text would be opened by Enter: show only pages.
    if (search.trim() !== q) return out;
    if (exact.length) out.push({ heading: "Version", entries: exact });
    if (pages.length && exact.length) out.push({ heading: "Pages", entries: pages });
    if (modelEntries.length) out.push({ heading: q ? "Models" : "Recently updated models", entries: modelEntries });
    if (recent.length) out.push({ heading: `Versions of ${ref!.name}`, entries: recent });
    if (datasetEntries.length) out.push({ heading: q ? "Datasets" : "Recent datasets", entries: datasetEntries });
    if (jobEntries.length) out.push({ heading: "Training jobs", entries: jobEntries });
    return out;
  }, [search, q, ref, resolved.data, models.data, versions.data, datasets.data, jobs.data]);

  // The highlighted entry is the user's choice while the list stays the same;
  // when the results change it goes back to the first, so Enter opens the best match.
  const signature = groups.flatMap((g) => g.entries.map((e) => e.value)).join("\n");
  const [chosen, setChosen] = useState<{ value: string; signature: string }>({ value: "", signature: "" });
  const first = groups[0]?.entries[0]?.value ?? "";
  const selected = chosen.signature === signature && signature.split("\n").includes(chosen.value) ? chosen.value : first;

  const loading = search.trim() !== q || models.isFetching || datasets.isFetching || resolved.isFetching || versions.isFetching;
  const failed = [models, datasets, resolved, versions, jobs].find((r) => r.isError && !(r === resolved || r === versions));

  return (
    <Command
      label="Search the hub"
      shouldFilter={false}
      vimBindings={false}
      value={selected}
      onValueChange={(value) => setChosen({ value, signature })}
      className="[&_[cmdk-group-heading]]:px-2 [&_[cmdk-group-heading]]:py-1.5 [&_[cmdk-group-heading]]:text-xs [&_[cmdk-group-heading]]:font-medium [&_[cmdk-group-heading]]:text-muted-foreground [&_[cmdk-item]]:px-2 [&_[cmdk-item]]:py-2"
    >
      <div className="relative">
        <CommandInput
          value={search}
          onValueChange={setSearch}
          placeholder="Pages, models, datasets, versions (name@alias, name 3), jobs…"
          aria-label="Search the hub"
        />
        {loading && (
          <LoaderCircle className="absolute top-3 right-3 size-4 animate-spin text-muted-foreground" aria-label="Searching" />
        )}
      </div>
      <CommandList className="max-h-[min(60vh,420px)]">
        {!loading && <CommandEmpty>Nothing matches “{search.trim()}”.</CommandEmpty>}
        {failed && (
          <p role="alert" className="px-3 py-2 text-sm text-destructive">
            {errorMessage(failed.error)}
          </p>
        )}
        {groups.map((group) => (
          <CommandGroup key={group.heading} heading={group.heading}>
            {group.entries.map((entry) => (
              <CommandItem
                key={entry.value}
                value={entry.value}
                onSelect={() => {
                  onDone();
                  navigate(entry.to);
                }}
              >
                <entry.icon aria-hidden className="text-muted-foreground" />
                <span className="min-w-0 truncate">{entry.label}</span>
                {entry.hint && <span className="ml-auto shrink-0 text-xs text-muted-foreground">{entry.hint}</span>}
              </CommandItem>
            ))}
          </CommandGroup>
        ))}
      </CommandList>
    </Command>
  );
}

