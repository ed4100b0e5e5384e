/**
 * "Register model": name, base model, description and tags, POSTed once with an
 * idempotency key (a retry of the same submission cannot create two models); the
 * API's field violations appear beside their fields.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Plus } from "lucide-react";
import { type FormEvent, useState } from "react";
import { useNavigate } from "react-router";

import { api, call } from "@/api/client";
import { FormError, FormField } from "@/components/FormField";
import { KeyValueRows } from "@/components/models/KeyValueRows";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Textarea } from "@/components/ui/textarea";
import { splitError } from "@/lib/forms";
import { type KeyValueRow, rowsToMap } from "@/pages/models/modelsLogic";

const FIELDS = ["name", "baseModel", "description", "tags", "idempotencyKey"] as const;

export function RegisterModelDialog({ trigger }: { trigger?: React.ReactNode }) {
  const [open, setOpen] = useState(false);
  return (
    <Dialog open={open} onOpenChange={setOpen}>
      <DialogTrigger asChild>
        {trigger ?? (
          <Button>
            <Plus /> Register model
          </Button>
        )}
      </DialogTrigger>
      <DialogContent className="sm:max-w-xl">{open && <RegisterModelForm onDone={() => setOpen(false)} />}</DialogContent>
    </Dialog>
  );
}

function RegisterModelForm({ onDone }: { onDone: () => void }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [baseModel, setBaseModel] = useState("");
  const [description, setDescription] = useState("");
  const [tags, setTags] = useState<KeyValueRow[]>([]);
  // One key per submission attempt of these values: a resent request is recognised, a changed one is new.
  const [idempotencyKey, setIdempotencyKey] = useState(() => crypto.randomUUID());

  const create = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/models", {
          body: { name: name.trim(), baseModel: baseModel.trim() || undefined, description: description || undefined, tags: rowsToMap(tags), idempotencyKey },
        }),
      ),
    onSuccess: async (response) => {
      await queryClient.invalidateQueries({ queryKey: ["models"] });
      const created = response.model?.name ?? name.trim();
      onDone();
      void navigate(`/models/${encodeURIComponent(created)}`);
    },
  });
  // A taken name names no field in the API's answer (ALREADY_EXISTS); it belongs beside the name.
  const { fields, form } = splitError(create.error, FIELDS, { alreadyExists: "name" });
  const changed = () => {
    if (create.isError) {
      create.reset();
      setIdempotencyKey(crypto.randomUUID());
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };

  return (
    <form onSubmit={submit} className="grid gap-4" noValidate>
      <DialogHeader>
        <DialogTitle>Register model</DialogTitle>
        <DialogDescription>A model groups versions (full weights or adapters) under one name; aliases point at its versions.</DialogDescription>
      </DialogHeader>
      <FormField id="register-model-name" label="Name" error={fields.name}>
        <Input
          value={name}
          autoFocus
          autoComplete="off"
          placeholder="e.g. support-bot"
          onChange={(e) => {
            setName(e.target.value);
            changed();
          }}
          className="font-mono"
        />
      </FormField>
      <FormField id="register-model-base" label="Base model" error={fields.baseModel}>
        <Input
          value={baseModel}
          autoComplete="off"
          placeholder="e.g. HuggingFaceTB/SmolLM2-135M-Instruct"
          onChange={(e) => {
            setBaseModel(e.target.value);
            changed();
          }}
          className="font-mono"
        />
      </FormField>
      <FormField id="register-model-description" label="Description" error={fields.description}>
        <Textarea
          value={description}
          rows={3}
          onChange={(e) => {
            setDescription(e.target.value);
            changed();
          }}
        />
      </FormField>
      <fieldset className="grid gap-1.5">
        <legend className="mb-1.5 text-sm font-medium">Tags</legend>
        <KeyValueRows
          rows={tags}
          onChange={(rows) => {
            setTags(rows);
            changed();
          }}
          noun="Tag"
          error={fields.tags}
          errorId="register-model-tags-error"
        />
      </fieldset>
      <FormError message={form} />
      <DialogFooter>
        <Button type="button" variant="outline" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" disabled={create.isPending}>
          {create.isPending ? "Registering…" : "Register"}
        </Button>
      </DialogFooter>
    </form>
  );
}
