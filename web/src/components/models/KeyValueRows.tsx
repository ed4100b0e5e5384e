import { Plus, X } from "lucide-react";
import { useId } from "react";

import { FieldError } from "@/components/FormField";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import type { KeyValueRow } from "@/pages/models/modelsLogic";

/**
 * Editable key=value rows (tags, metrics). Every input is labelled ("Tag 1 key"),
 * so the rows stay usable with a screen reader and in tests.
 */
export function KeyValueRows({
  rows,
  onChange,
  noun,
  valuePlaceholder = "value",
  valueInputMode,
  rowErrors = {},
  error,
  errorId,
}: {
  rows: KeyValueRow[];
  onChange: (rows: KeyValueRow[]) => void;
  /** "Tag" or "Metric": names the inputs and the add button. */
  noun: string;
  valuePlaceholder?: string;
  valueInputMode?: "decimal" | "text";
  rowErrors?: Record<number, string>;
  /** The API's violation for the whole map. */
  error?: string;
  errorId: string;
}) {
  const id = useId();
  const update = (index: number, change: Partial<KeyValueRow>) =>
    onChange(rows.map((row, i) => (i === index ? { ...row, ...change } : row)));
  return (
    <div className="grid gap-2">
      {rows.map((row, index) => {
        const rowErrorId = `${id}-row-${index}-error`;
        const invalid = rowErrors[index] !== undefined || error !== undefined;
        const describedBy = [rowErrors[index] ? rowErrorId : undefined, error ? errorId : undefined].filter(Boolean).join(" ") || undefined;
        return (
          <div key={index} className="grid gap-1">
            <div className="flex items-center gap-2">
              <Input
                aria-label={`${noun} ${index + 1} key`}
                placeholder="key"
                value={row.key}
                onChange={(e) => update(index, { key: e.target.value })}
                aria-invalid={invalid || undefined}
                aria-describedby={describedBy}
                className="font-mono"
              />
              <span aria-hidden="true" className="text-muted-foreground">=</span>
              <Input
                aria-label={`${noun} ${index + 1} value`}
                placeholder={valuePlaceholder}
                inputMode={valueInputMode}
                value={row.value}
                onChange={(e) => update(index, { value: e.target.value })}
                aria-invalid={invalid || undefined}
                aria-describedby={describedBy}
                className="font-mono"
              />
              <Button
                type="button"
                variant="ghost"
                size="icon"
                aria-label={`Remove ${noun.toLowerCase()} ${index + 1}`}
                onClick={() => onChange(rows.filter((_, i) => i !== index))}
              >
                <X />
              </Button>
            </div>
            <FieldError id={rowErrorId} message={rowErrors[index]} />
          </div>
        );
      })}
      <div>
        <Button type="button" variant="outline" size="sm" onClick={() => onChange([...rows, { key: "", value: "" }])}>
          <Plus /> Add {noun.toLowerCase()}
        </Button>
      </div>
      <FieldError id={errorId} message={error} />
    </div>
  );
}
