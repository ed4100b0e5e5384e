/**
 * The audit filters. Text fields are a draft applied with Enter or "Apply";
 * toggling an event type applies at once. The parent remounts this with the
 * URL's filters (key), so back/forward navigation resets the draft.
 */
import { Check, FilterX } from "lucide-react";
import { type FormEvent, useState } from "react";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { cn } from "@/lib/utils";
import { type AuditFilters, hasFilters, KNOWN_EVENT_TYPES, splitTypes } from "@/pages/audit/filters";

interface Draft {
  aggregate: string;
  principal: string;
  from: string;
  to: string;
  types: string[];
  otherTypes: string;
}

const KNOWN = new Set<string>(KNOWN_EVENT_TYPES);

function draftOf(filters: AuditFilters): Draft {
  return {
    aggregate: filters.aggregate,
    principal: filters.principal,
    from: filters.from,
    to: filters.to,
    types: filters.eventTypes.filter((t) => KNOWN.has(t)),
    otherTypes: filters.eventTypes.filter((t) => !KNOWN.has(t)).join(", "),
  };
}

function filtersOf(draft: Draft): AuditFilters {
  return {
    aggregate: draft.aggregate.trim(),
    principal: draft.principal.trim(),
    from: draft.from,
    to: draft.to,
    eventTypes: [...new Set([...draft.types, ...splitTypes(draft.otherTypes)])],
  };
}

export function FilterBar({ filters, onApply }: { filters: AuditFilters; onApply: (filters: AuditFilters) => void }) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(filters));
  const set = (change: Partial<Draft>) => setDraft((d) => ({ ...d, ...change }));

  const submit = (e: FormEvent) => {
    e.preventDefault();
    onApply(filtersOf(draft));
  };

  const toggleType = (type: string) => {
    const types = draft.types.includes(type) ? draft.types.filter((t) => t !== type) : [...draft.types, type];
    const next = { ...draft, types };
    setDraft(next);
    onApply(filtersOf(next));
  };

  return (
    <form onSubmit={submit} aria-label="Event filters" className="mb-4 space-y-3 rounded-lg border bg-card p-3">
      <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
        <div className="space-y-1.5">
          <Label htmlFor="audit-aggregate">Aggregate</Label>
          <Input
            id="audit-aggregate"
            placeholder="model/demo or dataset/chat"
            value={draft.aggregate}
            onChange={(e) => set({ aggregate: e.target.value })}
            autoComplete="off"
            spellCheck={false}
          />
        </div>
        <div className="space-y-1.5">
          <Label htmlFor="audit-principal">Principal</Label>
          <Input
            id="audit-principal"
            placeholder="alice"
            value={draft.principal}
            onChange={(e) => set({ principal: e.target.value })}
            autoComplete="off"
            spellCheck={false}
          />
        </div>
        <div className="space-y-1.5">
          <Label htmlFor="audit-from">From (local time)</Label>
          <Input id="audit-from" type="datetime-local" step={1} value={draft.from} onChange={(e) => set({ from: e.target.value })} />
        </div>
        <div className="space-y-1.5">
          <Label htmlFor="audit-to">To (local time)</Label>
          <Input id="audit-to" type="datetime-local" step={1} value={draft.to} onChange={(e) => set({ to: e.target.value })} />
        </div>
      </div>
      <div className="flex flex-wrap items-end gap-3">
        <fieldset className="w-full min-w-0 xl:w-auto xl:flex-1">
          <legend className="mb-1.5 text-sm font-medium">Event types</legend>
          <div className="flex flex-wrap gap-1.5">
            {KNOWN_EVENT_TYPES.map((type) => {
              const on = draft.types.includes(type);
              return (
                <button
                  key={type}
                  type="button"
                  aria-pressed={on}
                  onClick={() => toggleType(type)}
                  className={cn(
                    "inline-flex h-7 items-center gap-1 rounded-full border px-2.5 text-xs font-medium transition-colors outline-none focus-visible:ring-[3px] focus-visible:ring-ring/50",
                    on ? "border-primary bg-primary text-primary-foreground" : "bg-background text-foreground hover:bg-accent",
                  )}
                >
                  {on && <Check className="size-3" aria-hidden />}
                  {type}
                </button>
              );
            })}
          </div>
        </fieldset>
        <div className="w-full space-y-1.5 sm:w-60">
          <Label htmlFor="audit-other-types">Other event types</Label>
          <Input
            id="audit-other-types"
            placeholder="comma-separated"
            value={draft.otherTypes}
            onChange={(e) => set({ otherTypes: e.target.value })}
            autoComplete="off"
            spellCheck={false}
          />
        </div>
        <div className="flex gap-2">
          <Button type="submit" size="sm">
            Apply filters
          </Button>
          {hasFilters(filters) && (
            <Button type="button" size="sm" variant="outline" onClick={() => onApply({ aggregate: "", principal: "", from: "", to: "", eventTypes: [] })}>
              <FilterX aria-hidden />
              Clear
            </Button>
          )}
        </div>
      </div>
    </form>
  );
}
