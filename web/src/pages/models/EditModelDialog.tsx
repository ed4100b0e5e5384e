/**
 * Edit a model's description and tags. The form keeps the etag of the model as it
 * was opened and sends it with the PATCH, so a change someone else made meanwhile
 * is answered as a conflict (never silently overwritten); the conflict panel shows
 * the model as it is now and reloads the form with it.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Pencil, RefreshCw } from "lucide-react";
import { type FormEvent, useState } from "react";

import { api, call, errorMessage } from "@/api/client";
import { isConflict } from "@/api/errors";
import type { Model } from "@/api/types";
import { FormError, FormField } from "@/components/FormField";
import { KeyValueRows } from "@/components/models/KeyValueRows";
import { TagList } from "@/components/models/TagList";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import { Textarea } from "@/components/ui/textarea";
import { splitError } from "@/lib/forms";
import { type KeyValueRow, mapToRows, rowsToMap } from "@/pages/models/modelsLogic";

const FIELDS = ["description", "tags"] as const;

export function EditModelDialog({ model }: { model: Model }) {
  const [open, setOpen] = useState(false);
  return (
    <Dialog open={open} onOpenChange={setOpen}>
      <DialogTrigger asChild>
        <Button variant="outline">
          <Pencil /> Edit
        </Button>
      </DialogTrigger>
      <DialogContent className="sm:max-w-xl">{open && <EditModelForm opened={model} onDone={() => setOpen(false)} />}</DialogContent>
    </Dialog>
  );
}

function EditModelForm({ opened, onDone }: { opened: Model; onDone: () => void }) {
  const name = opened.name ?? "";
  const queryClient = useQueryClient();
  // A snapshot taken when the form opened: live updates of the page must not move the etag under the user.
  const [base, setBase] = useState(opened);
  const [description, setDescription] = useState(opened.description ?? "");
  const [tags, setTags] = useState<KeyValueRow[]>(mapToRows(opened.tags));

  const reload = useMutation({
    mutationFn: () => call(api.GET("/v1/models/{name}", { params: { path: { name } } })),
  });
  const save = useMutation({
    mutationFn: () =>
      call(
        api.PATCH("/v1/models/{name}", {
          params: { path: { name }, query: { updateMask: "description,tags" } },
          body: { description, tags: rowsToMap(tags), etag: base.etag },
        }),
      ),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ["model", name] });
      await queryClient.invalidateQueries({ queryKey: ["models"] });
      onDone();
    },
    // On a conflict, fetch the model as it is now to show what changed.
    onError: (error) => {
      if (isConflict(error)) reload.mutate();
    },
  });

  const conflict = isConflict(save.error);
  const current = reload.data?.model;

  const applyReload = () => {
    if (!current) return;
    setBase(current);
    setDescription(current.description ?? "");
    setTags(mapToRows(current.tags));
    save.reset();
    reload.reset();
  };

  const { fields, form } = conflict ? { fields: {} as Record<string, string>, form: undefined } : splitError(save.error, FIELDS);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };

  return (
    <form onSubmit={submit} className="grid gap-4" noValidate>
      <DialogHeader>
        <DialogTitle>Edit {name}</DialogTitle>
        <DialogDescription>Change the description and tags. Name and base model stay as registered.</DialogDescription>
      </DialogHeader>
      <FormField id="edit-model-description" label="Description" error={fields.description}>
        <Textarea rows={4} value={description} onChange={(e) => setDescription(e.target.value)} />
      </FormField>
      <fieldset className="grid gap-1.5">
        <legend className="mb-1.5 text-sm font-medium">Tags</legend>
        <KeyValueRows rows={tags} onChange={setTags} noun="Tag" error={fields.tags} errorId="edit-model-tags-error" />
      </fieldset>
      {conflict && (
        <div role="alert" className="grid gap-2 rounded-md border border-warning/50 bg-warning/10 p-3 text-sm">
          <p className="font-medium">Someone else changed this model since you opened it.</p>
          <p className="text-muted-foreground">Your changes were not saved. Reload to start again from the current values (your edits are discarded).</p>
          {reload.isPending && <p className="text-muted-foreground">Fetching the current model…</p>}
          {reload.isError && <p className="text-destructive">Could not fetch it: {errorMessage(reload.error)}</p>}
          {current && (
            <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1" aria-label="Current values">
              <dt className="text-muted-foreground">Description now</dt>
              <dd data-testid="conflict-current-description" className="break-words whitespace-pre-wrap">
                {current.description || <span className="text-muted-foreground">(empty)</span>}
              </dd>
              <dt className="text-muted-foreground">Tags now</dt>
              <dd>
                <TagList tags={current.tags} />
              </dd>
              <dt className="text-muted-foreground">Changed at</dt>
              <dd>{current.updateTime ? new Date(current.updateTime).toLocaleString() : "—"}</dd>
            </dl>
          )}
          <div>
            <Button type="button" variant="outline" size="sm" onClick={applyReload} disabled={!current}>
              <RefreshCw /> Reload
            </Button>
          </div>
        </div>
      )}
      <FormError message={form} />
      <DialogFooter>
        <Button type="button" variant="outline" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" disabled={save.isPending || conflict}>
          {save.isPending ? "Saving…" : "Save"}
        </Button>
      </DialogFooter>
    </form>
  );
}
