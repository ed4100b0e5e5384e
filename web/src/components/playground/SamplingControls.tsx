/** The sampling controls; each shows the range the API accepts (from its schema) and any problem beside it. */
import { useId } from "react";

import { FieldError } from "@/components/FormField";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Textarea } from "@/components/ui/textarea";
import { describeLimit, LIMITS, type NumericField, STOP_LIMITS } from "@/components/playground/limits";
import type { SamplingForm } from "@/lib/conversations";

const FIELDS: { field: NumericField; label: string; step: string }[] = [
  { field: "temperature", label: "Temperature", step: "0.1" },
  { field: "topP", label: "Top-p", step: "0.05" },
  { field: "topK", label: "Top-k", step: "1" },
  { field: "minP", label: "Min-p", step: "0.01" },
  { field: "repetitionPenalty", label: "Repetition penalty", step: "0.05" },
  { field: "maxTokens", label: "Max tokens", step: "1" },
];

export function SamplingControls({
  value,
  onChange,
  problems,
}: {
  value: SamplingForm;
  onChange: (next: SamplingForm) => void;
  problems: Partial<Record<keyof SamplingForm, string>>;
}) {
  const id = useId();
  const set = (field: keyof SamplingForm, text: string) => onChange({ ...value, [field]: text });
  const described = (field: string, problem: string | undefined) => ({
    "aria-invalid": problem ? true : undefined,
    "aria-describedby": `${id}-${field}-hint${problem ? ` ${id}-${field}-error` : ""}`,
  });
  return (
    <fieldset className="grid gap-3">
      <legend className="mb-2 text-sm font-semibold">Sampling</legend>
      <div className="grid grid-cols-2 gap-x-3 gap-y-2.5">
        {FIELDS.map(({ field, label, step }) => {
          const limit = LIMITS[field];
          const range = describeLimit(limit);
          return (
            <div key={field} className="grid content-start gap-1">
              <Label htmlFor={`${id}-${field}`} className="text-xs">
                {label}
              </Label>
              <Input
                id={`${id}-${field}`}
                type="number"
                inputMode="decimal"
                step={step}
                min={limit.minimum ?? limit.exclusiveMinimum}
                max={limit.maximum ?? limit.exclusiveMaximum}
                placeholder="default"
                value={value[field]}
                onChange={(e) => set(field, e.target.value)}
                className="h-8 font-mono text-xs"
                {...described(field, problems[field])}
              />
              <span id={`${id}-${field}-hint`} className="text-[11px] text-muted-foreground">
                {range || "any value"}
              </span>
              <FieldError id={`${id}-${field}-error`} message={problems[field]} />
            </div>
          );
        })}
        <div className="col-span-2 grid gap-1">
          <Label htmlFor={`${id}-seed`} className="text-xs">
            Seed
          </Label>
          <Input
            id={`${id}-seed`}
            inputMode="numeric"
            placeholder="random"
            value={value.seed}
            onChange={(e) => set("seed", e.target.value)}
            className="h-8 font-mono text-xs"
            {...described("seed", problems.seed)}
          />
          <span id={`${id}-seed-hint`} className="text-[11px] text-muted-foreground">
            A whole number makes sampling repeatable.
          </span>
          <FieldError id={`${id}-seed-error`} message={problems.seed} />
        </div>
        <div className="col-span-2 grid gap-1">
          <Label htmlFor={`${id}-stop`} className="text-xs">
            Stop strings
          </Label>
          <Textarea
            id={`${id}-stop`}
            rows={2}
            value={value.stop}
            onChange={(e) => set("stop", e.target.value)}
            className="min-h-12 font-mono text-xs"
            {...described("stop", problems.stop)}
          />
          <span id={`${id}-stop-hint`} className="text-[11px] text-muted-foreground">
            One per line, at most {STOP_LIMITS.maxItems}, each up to {STOP_LIMITS.maxLength} characters.
          </span>
          <FieldError id={`${id}-stop-error`} message={problems.stop} />
        </div>
      </div>
    </fieldset>
  );
}
