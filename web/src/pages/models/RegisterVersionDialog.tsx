/**
 * "Register version": a model directory on the hub's machine (config.json +
 * safetensors), a description and metrics, with the API's violations beside the
 * fields (a path that is not a model directory names artifact_path).
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Plus } from "lucide-react";
import { type FormEvent, useState } from "react";

import { api, call } from "@/api/client";
import { FormError, FormField } from "@/components/FormField";
import { KeyValueRows } from "@/components/models/KeyValueRows";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Textarea } from "@/components/ui/textarea";
import { splitError } from "@/lib/forms";
import { type KeyValueRow, rowsToMetrics } from "@/pages/models/modelsLogic";

const FIELDS = ["artifactPath", "description", "metrics", "idempotencyKey"] as const;

export function RegisterVersionDialog({ name }: { name: string }) {
  const [open, setOpen] = useState(false);
  return (
    <Dialog open={open} onOpenChange={setOpen}>
      <DialogTrigger asChild>
        <Button variant="outline">
          <Plus /> Register version
        </Button>
      </DialogTrigger>
      <DialogContent className="sm:max-w-xl">{open && <RegisterVersionForm name={name} onDone={() => setOpen(false)} />}</DialogContent>
    </Dialog>
  );
}

function RegisterVersionForm({ name, onDone }: { name: string; onDone: () => void }) {
  const queryClient = useQueryClient();
  const [artifactPath, setArtifactPath] = useState("");
  const [description, setDescription] = useState("");
  const [metricRows, setMetricRows] = useState<KeyValueRow[]>([]);
  const [idempotencyKey, setIdempotencyKey] = useState(() => crypto.randomUUID());
  const [submitted, setSubmitted] = useState(false);
  const { metrics, errors: metricErrors } = rowsToMetrics(metricRows);

  const create = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/models/{name}/versions", {
          params: { path: { name } },
          body: { artifactPath: artifactPath.trim(), description: description || undefined, metrics, idempotencyKey },
        }),
      ),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ["model", name] });
      await queryClient.invalidateQueries({ queryKey: ["models"] });
      onDone();
    },
  });
  const { fields, form } = splitError(create.error, FIELDS);
  const changed = () => {
    if (create.isError) {
      create.reset();
      setIdempotencyKey(crypto.randomUUID());
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    if (Object.keys(metricErrors).length > 0) return;
    create.mutate();
  };

  return (
    <form onSubmit={submit} className="grid gap-4" noValidate>
      <DialogHeader>
        <DialogTitle>Register a version of {name}</DialogTitle>
        <DialogDescription>
          An mlx-lm model directory on the hub&apos;s machine (config.json and *.safetensors). Its files are hashed and recorded.
        </DialogDescription>
      </DialogHeader>
      <FormField id="register-version-path" label="Artifact path" error={fields.artifactPath}>
        <Input
          value={artifactPath}
          autoFocus
          autoComplete="off"
          placeholder="/models/my-model"
          onChange={(e) => {
            setArtifactPath(e.target.value);
            changed();
          }}
          className="font-mono"
        />
      </FormField>
      <FormField id="register-version-description" label="Description" error={fields.description}>
        <Textarea
          rows={2}
          value={description}
          onChange={(e) => {
            setDescription(e.target.value);
            changed();
          }}
        />
      </FormField>
      <fieldset className="grid gap-1.5">
        <legend className="mb-1.5 text-sm font-medium">Metrics</legend>
        <KeyValueRows
          rows={metricRows}
          onChange={(rows) => {
            setMetricRows(rows);
            changed();
          }}
          noun="Metric"
          valuePlaceholder="0.0"
          valueInputMode="decimal"
          rowErrors={submitted ? metricErrors : {}}
          error={fields.metrics}
          errorId="register-version-metrics-error"
        />
      </fieldset>
      <FormError message={form} />
      <DialogFooter>
        <Button type="button" variant="outline" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" disabled={create.isPending}>
          {create.isPending ? "Registering…" : "Register version"}
        </Button>
      </DialogFooter>
    </form>
  );
}
