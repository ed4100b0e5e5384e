/**
 * The model list: search (sticky while scrolling), tag and base-model filters,
 * sorting and paging through the API's page tokens. All of it lives in the URL,
 * so a link or a reload shows the same page.
 */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { ArrowDown, ArrowUp, ArrowUpDown, ChevronLeft, ChevronRight, Search, X } from "lucide-react";
import { type FormEvent, useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import type { Model } from "@/api/types";
import { AliasBadge } from "@/components/models/AliasBadge";
import { FormError } from "@/components/FormField";
import { TagList } from "@/components/models/TagList";
import { Timestamp } from "@/components/models/Timestamp";
import { PageHeader } from "@/components/PageHeader";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { NativeSelect } from "@/components/ui/native-select";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import {
  MODEL_ORDERS,
  type ModelListState,
  type ModelOrder,
  nextPage,
  previousPage,
  readListState,
  sortDirection,
  toggleSort,
  withFilters,
  writeListState,
} from "@/pages/models/modelsLogic";
import { RegisterModelDialog } from "@/pages/models/RegisterModelDialog";

const PAGE_SIZE = 25;

const ORDER_LABELS: Record<ModelOrder, string> = {
  name: "Name (A–Z)",
  "name desc": "Name (Z–A)",
  create_time: "Created (oldest first)",
  "create_time desc": "Created (newest first)",
  update_time: "Updated (oldest first)",
  "update_time desc": "Updated (newest first)",
};

export default function ModelsPage() {
  const [params, setParams] = useSearchParams();
  const state = readListState(params);
  const setState = (next: ModelListState) => setParams(writeListState(next));

  const list = useQuery({
    queryKey: ["models", "list", { q: state.query, base: state.baseModel, tags: state.tags, order: state.orderBy, page: state.page }],
    queryFn: () =>
      call(
        api.GET("/v1/models", {
          params: {
            query: {
              pageSize: PAGE_SIZE,
              pageToken: state.page || undefined,
              query: state.query || undefined,
              baseModel: state.baseModel || undefined,
              tags: state.tags.length ? state.tags : undefined,
              orderBy: state.orderBy,
            },
          },
        }),
      ),
    placeholderData: keepPreviousData,
  });

  const models = list.data?.models ?? [];
  const total = list.data?.totalSize ?? 0;
  const filtered = Boolean(state.query || state.baseModel || state.tags.length);
  const pageNumber = state.tokens.length + 1;

  return (
    <div>
      <PageHeader
        title="Models"
        description={list.data ? countText(total, filtered) : "Registered models, their versions and aliases."}
        actions={<RegisterModelDialog />}
      />
      <Toolbar state={state} setState={setState} />
      {list.isError && <FormError message={`Could not list models: ${errorMessage(list.error)}`} />}
      <div className="rounded-lg border bg-card" aria-busy={list.isFetching}>
        <Table>
          <TableHeader>
            <TableRow>
              <SortableHead label="Name" field="name" state={state} setState={setState} />
              <TableHead>Base model</TableHead>
              <TableHead className="text-right">Latest</TableHead>
              <TableHead>Aliases</TableHead>
              <TableHead>Tags</TableHead>
              <TableHead>Created by</TableHead>
              <SortableHead label="Created" field="create_time" state={state} setState={setState} />
              <SortableHead label="Updated" field="update_time" state={state} setState={setState} />
            </TableRow>
          </TableHeader>
          <TableBody>
            {list.isPending &&
              Array.from({ length: 5 }, (_, i) => (
                <TableRow key={i}>
                  {Array.from({ length: 8 }, (_, j) => (
                    <TableCell key={j}>
                      <Skeleton className="h-4 w-full" />
                    </TableCell>
                  ))}
                </TableRow>
              ))}
            {models.map((model) => (
              <ModelRow key={model.name} model={model} />
            ))}
            {list.isSuccess && models.length === 0 && (
              <TableRow>
                <TableCell colSpan={8} className="py-12 text-center">
                  {filtered ? (
                    <div className="grid justify-items-center gap-2">
                      <p className="font-medium">No models match these filters.</p>
                      <Button variant="outline" size="sm" onClick={() => setState(withFilters(state, { query: "", baseModel: "", tags: [] }))}>
                        Clear filters
                      </Button>
                    </div>
                  ) : (
                    <div className="grid justify-items-center gap-2">
                      <p className="font-medium">No models yet — register one.</p>
                      <p className="text-sm text-muted-foreground">A model names a family of versions: full weights and the adapters trained on them.</p>
                      <RegisterModelDialog />
                    </div>
                  )}
                </TableCell>
              </TableRow>
            )}
          </TableBody>
        </Table>
      </div>
      <nav aria-label="Pages" className="mt-3 flex items-center justify-between gap-2 text-sm text-muted-foreground">
        <span>
          Page {pageNumber}
          {list.data ? ` · ${models.length} of ${total}` : ""}
        </span>
        <div className="flex gap-2">
          <Button variant="outline" size="sm" disabled={!state.page} onClick={() => setState(previousPage(state))}>
            <ChevronLeft /> Previous
          </Button>
          <Button
            variant="outline"
            size="sm"
            disabled={!list.data?.nextPageToken || list.isPlaceholderData}
            onClick={() => list.data?.nextPageToken && setState(nextPage(state, list.data.nextPageToken))}
          >
            Next <ChevronRight />
          </Button>
        </div>
      </nav>
    </div>
  );
}

function countText(total: number, filtered: boolean): string {
  if (!filtered) return `${total} ${total === 1 ? "model" : "models"}`;
  return total === 1 ? "1 model matches" : `${total} models match`;
}

function ModelRow({ model }: { model: Model }) {
  const aliases = Object.entries(model.aliases ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const name = model.name ?? "";
  return (
    <TableRow>
      <TableCell className="font-medium">
        <Link to={`/models/${encodeURIComponent(name)}`} className="font-mono text-primary underline-offset-4 hover:underline">
          {name}
        </Link>
        {model.description && <p className="max-w-72 truncate text-xs text-muted-foreground" title={model.description}>{model.description}</p>}
      </TableCell>
      <TableCell className="max-w-56 truncate font-mono text-xs" title={model.baseModel}>
        {model.baseModel || <span className="text-muted-foreground">—</span>}
      </TableCell>
      <TableCell className="text-right tabular-nums">
        {model.latestVersion && model.latestVersion !== "0" ? (
          <Link to={`/models/${encodeURIComponent(name)}/versions/${model.latestVersion}`} className="underline-offset-4 hover:underline">
            v{model.latestVersion}
          </Link>
        ) : (
          <span className="text-muted-foreground">—</span>
        )}
      </TableCell>
      <TableCell>
        {aliases.length ? (
          <span className="flex flex-wrap gap-1">
            {aliases.map(([alias, version]) => (
              <AliasBadge key={alias} alias={alias} version={version} />
            ))}
          </span>
        ) : (
          <span className="text-muted-foreground">—</span>
        )}
      </TableCell>
      <TableCell>
        <TagList tags={model.tags} limit={3} />
      </TableCell>
      <TableCell className="text-xs">{model.createdBy || <span className="text-muted-foreground">—</span>}</TableCell>
      <TableCell className="text-xs">
        <Timestamp value={model.createTime} />
      </TableCell>
      <TableCell className="text-xs">
        <Timestamp value={model.updateTime} relative />
      </TableCell>
    </TableRow>
  );
}

function SortableHead({
  label,
  field,
  state,
  setState,
}: {
  label: string;
  field: "name" | "create_time" | "update_time";
  state: ModelListState;
  setState: (s: ModelListState) => void;
}) {
  const direction = sortDirection(state.orderBy, field);
  const Icon = direction === "asc" ? ArrowUp : direction === "desc" ? ArrowDown : ArrowUpDown;
  return (
    <TableHead aria-sort={direction === "asc" ? "ascending" : direction === "desc" ? "descending" : "none"}>
      <button
        type="button"
        className="-ml-1 inline-flex items-center gap-1 rounded px-1 hover:text-foreground focus-visible:ring-2 focus-visible:ring-ring focus-visible:outline-none"
        onClick={() => setState(withFilters(state, { orderBy: toggleSort(state.orderBy, field) }))}
      >
        {label}
        <Icon className="size-3.5" aria-hidden="true" />
        <span className="sr-only">{direction ? `(sorted ${direction === "asc" ? "ascending" : "descending"})` : "(sort)"}</span>
      </button>
    </TableHead>
  );
}

/** Search, filters and order; sticks under the top bar while the table scrolls. */
function Toolbar({ state, setState }: { state: ModelListState; setState: (s: ModelListState) => void }) {
  const [query, setQuery] = useState(state.query);
  const [baseModel, setBaseModel] = useState(state.baseModel);
  const [tag, setTag] = useState("");

  // Follow the URL (back/forward, a cleared filter) without fighting the user's typing.
  const [seenQuery, setSeenQuery] = useState(state.query);
  if (seenQuery !== state.query) {
    setSeenQuery(state.query);
    setQuery(state.query);
  }
  const [seenBase, setSeenBase] = useState(state.baseModel);
  if (seenBase !== state.baseModel) {
    setSeenBase(state.baseModel);
    setBaseModel(state.baseModel);
  }

  // Search as you type, a moment after the last key.
  const latest = JSON.stringify(state);
  useEffect(() => {
    if (query === state.query) return;
    const timer = setTimeout(() => setState(withFilters(JSON.parse(latest) as ModelListState, { query })), 250);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- setState is recreated every render; latest carries the state
  }, [query, latest]);

  const addTag = (event: FormEvent) => {
    event.preventDefault();
    const value = tag.trim();
    if (!value || state.tags.includes(value)) return;
    setState(withFilters(state, { tags: [...state.tags, value] }));
    setTag("");
  };

  return (
    <div className="sticky top-14 z-20 -mx-6 mb-4 border-b bg-background/95 px-6 py-3 backdrop-blur" role="search" aria-label="Filter models">
      <div className="flex flex-wrap items-end gap-3">
        <div className="grid min-w-64 flex-1 gap-1">
          <Label htmlFor="models-search" className="text-xs text-muted-foreground">
            Search
          </Label>
          <div className="relative">
            <Search className="pointer-events-none absolute top-1/2 left-2.5 size-4 -translate-y-1/2 text-muted-foreground" aria-hidden="true" />
            <Input
              id="models-search"
              type="search"
              placeholder="Name or description…"
              value={query}
              onChange={(e) => setQuery(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === "Enter") setState(withFilters(state, { query }));
              }}
              className="pl-8"
            />
          </div>
        </div>
        <form
          className="grid w-56 gap-1"
          onSubmit={(e) => {
            e.preventDefault();
            setState(withFilters(state, { baseModel: baseModel.trim() }));
          }}
        >
          <Label htmlFor="models-base" className="text-xs text-muted-foreground">
            Base model
          </Label>
          <Input
            id="models-base"
            placeholder="exact, then Enter"
            value={baseModel}
            onChange={(e) => setBaseModel(e.target.value)}
            onBlur={() => baseModel.trim() !== state.baseModel && setState(withFilters(state, { baseModel: baseModel.trim() }))}
            className="font-mono text-xs"
          />
        </form>
        <form className="grid w-48 gap-1" onSubmit={addTag}>
          <Label htmlFor="models-tag" className="text-xs text-muted-foreground">
            Tag filter
          </Label>
          <Input id="models-tag" placeholder="key or key=value, Enter" value={tag} onChange={(e) => setTag(e.target.value)} className="font-mono text-xs" />
        </form>
        <div className="grid w-52 gap-1">
          <Label htmlFor="models-order" className="text-xs text-muted-foreground">
            Sort by
          </Label>
          <NativeSelect
            id="models-order"
            value={state.orderBy}
            onChange={(e) => setState(withFilters(state, { orderBy: e.target.value as ModelOrder }))}
          >
            {MODEL_ORDERS.map((order) => (
              <option key={order} value={order}>
                {ORDER_LABELS[order]}
              </option>
            ))}
          </NativeSelect>
        </div>
      </div>
      {(state.tags.length > 0 || state.baseModel) && (
        <ul className="mt-2 flex flex-wrap gap-1.5" aria-label="Active filters">
          {state.baseModel && (
            <li>
              <Badge variant="outline" className="gap-1 font-mono font-normal">
                base: {state.baseModel}
                <button type="button" className="rounded-sm hover:text-destructive focus-visible:ring-2 focus-visible:ring-ring focus-visible:outline-none" aria-label={`Remove base model filter ${state.baseModel}`} onClick={() => setState(withFilters(state, { baseModel: "" }))}>
                  <X />
                </button>
              </Badge>
            </li>
          )}
          {state.tags.map((t) => (
            <li key={t}>
              <Badge variant="outline" className="gap-1 font-mono font-normal">
                tag: {t}
                <button type="button" className="rounded-sm hover:text-destructive focus-visible:ring-2 focus-visible:ring-ring focus-visible:outline-none" aria-label={`Remove tag filter ${t}`} onClick={() => setState(withFilters(state, { tags: state.tags.filter((x) => x !== t) }))}>
                  <X />
                </button>
              </Badge>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
