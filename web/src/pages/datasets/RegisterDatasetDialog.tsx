/**
 * "Register dataset": name, path and description. The registry checks the file
 * (under a data root, readable JSONL of one format) and hashes it; its field
 * violations are shown beside the fields they concern.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Plus } from "lucide-react";
import { type FormEvent, useId, useState } from "react";

import { api, call, errorMessage } from "@/api/client";
import { ApiError } from "@/api/errors";
import type { Dataset } from "@/api/types";
import { Button } from "@/components/ui/button";
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
  DialogTrigger,
} from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Textarea } from "@/components/ui/textarea";

type Field = "name" | "path" | "description";
const FIELDS: Field[] = ["name", "path", "description"];

/** Which field an error belongs to, and the message left for the form itself. */
export function splitError(error: unknown): { fields: Partial<Record<Field, string>>; form?: string } {
  if (!(error instanceof ApiError)) return { fields: {}, form: error ? errorMessage(error) : undefined };
  const byField = error.violationsByField();
  const fields: Partial<Record<Field, string>> = {};
  for (const field of FIELDS) if (byField[field]) fields[field] = byField[field];
  // A taken name is ALREADY_EXISTS without a field violation; it is still the name's problem.
  if (error.httpStatus === 409 && !fields.name) fields.name = error.message;
  const shown = Object.values(fields).length > 0;
  const unplaced = error.fieldViolations.filter((v) => !FIELDS.includes(v.field as Field));
  const form = unplaced.length
    ? unplaced.map((v) => `${v.field}: ${v.description}`).join("; ")
    : shown
      ? undefined
      : error.message;
  return { fields, form };
}

function FieldError({ id, message }: { id: string; message?: string }) {
  if (!message) return null;
  return (
    <p id={id} className="text-sm text-destructive">
      {message}
    </p>
  );
}

export function RegisterDatasetDialog({ onRegistered }: { onRegistered?: (dataset: Dataset) => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [path, setPath] = useState("");
  const [description, setDescription] = useState("");

  const mutation = useMutation({
    mutationFn: () =>
      call(api.POST("/v1/datasets", { body: { name: name.trim(), path: path.trim(), description } })),
    onSuccess: (response) => {
      void queryClient.invalidateQueries({ queryKey: ["datasets"] });
      void queryClient.invalidateQueries({ queryKey: ["registry-stats"] });
      setOpen(false);
      setName("");
      setPath("");
      setDescription("");
      mutation.reset();
      if (response.dataset) onRegistered?.(response.dataset);
    },
  });
  const { fields, form } = splitError(mutation.error);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    mutation.mutate();
  };

  const described = (field: Field, help?: string) =>
    [fields[field] ? `${id}-${field}-error` : "", help ?? ""].filter(Boolean).join(" ") || undefined;

  return (
    <Dialog
      open={open}
      onOpenChange={(next) => {
        setOpen(next);
        if (!next) mutation.reset();
      }}
    >
      <DialogTrigger asChild>
        <Button>
          <Plus aria-hidden="true" />
          Register dataset
        </Button>
      </DialogTrigger>
      <DialogContent>
        <DialogHeader>
          <DialogTitle>Register dataset</DialogTitle>
          <DialogDescription>
            A JSONL file of chat, completions or text records. The registry records its sha256, size and record count.
          </DialogDescription>
        </DialogHeader>
        <form onSubmit={submit} className="grid gap-4" noValidate>
          <div className="grid gap-2">
            <Label htmlFor={`${id}-name`}>Name</Label>
            <Input
              id={`${id}-name`}
              value={name}
              onChange={(e) => setName(e.target.value)}
              placeholder="chat-support-v1"
              autoComplete="off"
              required
              aria-invalid={fields.name ? true : undefined}
              aria-describedby={described("name", `${id}-name-help`)}
            />
            <p id={`${id}-name-help`} className="text-xs text-muted-foreground">
              Lowercase letters, digits, dots, dashes and underscores.
            </p>
            <FieldError id={`${id}-name-error`} message={fields.name} />
          </div>
          <div className="grid gap-2">
            <Label htmlFor={`${id}-path`}>Path</Label>
            <Input
              id={`${id}-path`}
              value={path}
              onChange={(e) => setPath(e.target.value)}
              placeholder="/srv/mlxhub/datasets/chat.jsonl"
              autoComplete="off"
              className="font-mono"
              required
              aria-invalid={fields.path ? true : undefined}
              aria-describedby={described("path", `${id}-path-help`)}
            />
            <p id={`${id}-path-help`} className="text-xs text-muted-foreground">
              The file must lie under one of the hub's data roots (by default <code>$MLXHUB_HOME/datasets</code>); if
              it does not, the registry says which roots it accepts.
            </p>
            <FieldError id={`${id}-path-error`} message={fields.path} />
          </div>
          <div className="grid gap-2">
            <Label htmlFor={`${id}-description`}>Description</Label>
            <Textarea
              id={`${id}-description`}
              value={description}
              onChange={(e) => setDescription(e.target.value)}
              rows={3}
              aria-invalid={fields.description ? true : undefined}
              aria-describedby={described("description")}
            />
            <FieldError id={`${id}-description-error`} message={fields.description} />
          </div>
          {form && (
            <div role="alert" className="rounded-md border border-destructive/50 px-3 py-2 text-sm text-destructive">
              {form}
            </div>
          )}
          <DialogFooter>
            <Button type="submit" disabled={mutation.isPending || !name.trim() || !path.trim()}>
              {mutation.isPending ? "Registering…" : "Register"}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}
