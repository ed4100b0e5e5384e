/**
 * "Register dataset": name, path and description. The registry checks the file
 * (under a data root, readable JSONL of one format) and hashes it; its field
 * violations are shown beside the fields they concern.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Plus } from "lucide-react";
import { type FormEvent, useId, useState } from "react";

import { api, call } from "@/api/client";
import type { Dataset } from "@/api/types";
import { FormError, FormField } from "@/components/FormField";
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
import { Textarea } from "@/components/ui/textarea";
import { splitError } from "@/lib/forms";

const FIELDS = ["name", "path", "description"] as const;

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
  // A taken name is ALREADY_EXISTS without a field violation; it is still the name's problem.
  const { fields, form } = splitError(mutation.error, FIELDS, { alreadyExists: "name" });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    mutation.mutate();
  };

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
          <FormField id={`${id}-name`} label="Name" error={fields.name} hint="Lowercase letters, digits, dots, dashes and underscores." className="gap-2">
            <Input
              value={name}
              onChange={(e) => setName(e.target.value)}
              placeholder="chat-support-v1"
              autoComplete="off"
              required
            />
          </FormField>
          <FormField
            id={`${id}-path`}
            label="Path"
            error={fields.path}
            hint={
              <>
                The file must lie under one of the hub's data roots (by default <code>$MLXHUB_HOME/datasets</code>); if it
                does not, the registry says which roots it accepts.
              </>
            }
            className="gap-2"
          >
            <Input
              value={path}
              onChange={(e) => setPath(e.target.value)}
              placeholder="/srv/mlxhub/datasets/chat.jsonl"
              autoComplete="off"
              className="font-mono"
              required
            />
          </FormField>
          <FormField id={`${id}-description`} label="Description" error={fields.description} className="gap-2">
            <Textarea value={description} onChange={(e) => setDescription(e.target.value)} rows={3} />
          </FormField>
          <FormError message={form} />
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
