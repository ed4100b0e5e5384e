import { AlertCircle } from "lucide-react";

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
