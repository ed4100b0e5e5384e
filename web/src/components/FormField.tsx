/**
 * One form field: its label, the control, an optional hint and the API's violation,
 * with the control pointing at both (aria-invalid, aria-describedby). Every dialog
 * builds its fields from this, so they look and read alike with a screen reader.
 */
import { AlertCircle } from "lucide-react";
import { Slot } from "radix-ui";
import type { ReactElement, ReactNode } from "react";

import { Label } from "@/components/ui/label";
import { controlProps, errorId, hintId } from "@/lib/forms";
import { cn } from "@/lib/utils";

export function FormField({
  id,
  label,
  error,
  hint,
  className,
  children,
}: {
  /** The control's id; its hint and violation get `${id}-hint` and `${id}-error`. */
  id: string;
  label: ReactNode;
  /** The API's violation for this field, shown under it. */
  error?: string;
  /** Help shown under the control and read as part of its description. */
  hint?: ReactNode;
  /** The wrapper's classes (its grid and gaps). */
  className?: string;
  /** The one control (Input, Textarea, NativeSelect, ...); it receives the id and aria props. */
  children: ReactElement;
}) {
  return (
    <div className={cn("grid gap-1.5", className)}>
      <Label htmlFor={id}>{label}</Label>
      <Slot.Root {...controlProps(id, error, hint !== undefined)}>{children}</Slot.Root>
      {hint !== undefined && (
        <p id={hintId(id)} className="text-xs text-muted-foreground">
          {hint}
        </p>
      )}
      <FieldError id={errorId(id)} message={error} />
    </div>
  );
}

/** A field's violation, shown under it; the field points at it with aria-describedby. */
export function FieldError({ id, message }: { id: string; message: string | undefined }) {
  if (!message) return null;
  return (
    <p id={id} className="flex items-start gap-1 text-xs text-destructive" role="alert">
      <AlertCircle className="mt-0.5 size-3 shrink-0" aria-hidden="true" />
      {message}
    </p>
  );
}

/** The form-level error: the API's message for an error that names no field. */
export function FormError({ message }: { message: string | undefined }) {
  if (!message) return null;
  return (
    <div role="alert" className="rounded-md border border-destructive/50 bg-destructive/10 px-3 py-2 text-sm text-destructive">
      {message}
    </div>
  );
}
