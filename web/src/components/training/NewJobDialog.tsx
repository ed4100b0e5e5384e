/**
 * "New training job": a model (and which of its versions: the latest, an alias
 * or a number) and a dataset, each picked from a searchable list, and every
 * config field with the default the trainer will use (GET /v1/training/defaults)
 * and its limits. The API's violations appear beside their fields. One
 * idempotency key per opening of the form, so a double click queues one job.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Plus } from "lucide-react";
import { type ChangeEvent, type FormEvent, useDeferredValue, useId, useState } from "react";
import { useNavigate } from "react-router";

import { api, call } from "@/api/client";
import { FormError, FormField } from "@/components/FormField";
import {
  boundsText,
  CONFIG_FIELDS,
  configValue,
  type TrainingConfig,
} from "@/components/training/trainingLogic";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { NativeSelect } from "@/components/ui/native-select";
import { splitError } from "@/lib/forms";

type Key = keyof TrainingConfig;
const ENUMS: Partial<Record<Key, readonly string[]>> = {
  fineTuneType: ["FINE_TUNE_TYPE_LORA", "FINE_TUNE_TYPE_DORA"],
  lrSchedule: ["LEARNING_RATE_SCHEDULE_CONSTANT", "LEARNING_RATE_SCHEDULE_COSINE_DECAY", "LEARNING_RATE_SCHEDULE_LINEAR"],
};
const BOOLEANS: readonly Key[] = ["maskPrompt", "gradCheckpoint"];
const TEXTS: readonly Key[] = ["validationDataset"];
const INT64: readonly Key[] = ["seed"];
const HINTS: Partial<Record<Key, string>> = {
  numLayers: "layers from the top to adapt; -1 for all (the default is capped at the model's layers)",
  iters: "give iterations or epochs, not both",
  epochs: "0: unset; when set, replaces iterations",
  valBatches: "-1 for the whole validation set",
  validationSplit: "fraction held out for validation",
};
const FORM_FIELDS = ["model", "dataset", "outputModel", "idempotencyKey", ...CONFIG_FIELDS.map((f) => `config.${f.key}`)] as const;

export function NewJobDialog({ label = "New training job" }: { label?: string }) {
  const [open, setOpen] = useState(false);
  return (
    <Dialog open={open} onOpenChange={setOpen}>
      <DialogTrigger asChild>
        <Button>
          <Plus /> {label}
        </Button>
      </DialogTrigger>
      <DialogContent className="max-h-[90vh] overflow-y-auto sm:max-w-3xl">{open && <NewJobForm onDone={() => setOpen(false)} />}</DialogContent>
    </Dialog>
  );
}

function NewJobForm({ onDone }: { onDone: () => void }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const id = useId();
  const [model, setModel] = useState("");
  const [version, setVersion] = useState("");
  const [dataset, setDataset] = useState("");
  const [outputModel, setOutputModel] = useState("");
  const [values, setValues] = useState<Partial<Record<Key, string>>>({});
  // One key for this opening of the form: a second click (or a retry after a network error) returns the same job.
  const [idempotencyKey] = useState(() => crypto.randomUUID());
  const modelQuery = useDeferredValue(model);
  const datasetQuery = useDeferredValue(dataset);

  const defaults = useQuery({ queryKey: ["training-defaults"], queryFn: () => call(api.GET("/v1/training/defaults")), staleTime: Infinity });
  const models = useQuery({
    queryKey: ["models", "pick", modelQuery],
    queryFn: () => call(api.GET("/v1/models", { params: { query: { query: modelQuery || undefined, pageSize: 20 } } })),
  });
  const picked = models.data?.models?.find((m) => m.name === model.trim());
  const versions = useQuery({
    queryKey: ["model-versions", "pick", picked?.name],
    enabled: Boolean(picked),
    queryFn: () => call(api.GET("/v1/models/{name}/versions", { params: { path: { name: picked?.name ?? "" }, query: { pageSize: 100 } } })),
  });
  const datasets = useQuery({
    queryKey: ["datasets", "pick", datasetQuery],
    queryFn: () => call(api.GET("/v1/datasets", { params: { query: { query: datasetQuery || undefined, pageSize: 20 } } })),
  });

  const reference = () => {
    const name = model.trim();
    if (!version) return name;
    return version.startsWith("@") ? `${name}${version}` : `${name}/versions/${version}`;
  };

  const config = (): TrainingConfig => {
    const out: Record<string, unknown> = {};
    for (const { key } of CONFIG_FIELDS) {
      const raw = values[key];
      if (raw === undefined || raw === "") continue;
      if (BOOLEANS.includes(key)) out[key] = raw === "yes";
      else if (ENUMS[key] || TEXTS.includes(key) || INT64.includes(key)) out[key] = raw.trim();
      else out[key] = Number(raw);
    }
    return out as TrainingConfig;
  };

  const create = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/training/jobs", {
          body: { model: reference(), dataset: dataset.trim(), outputModel: outputModel.trim() || undefined, idempotencyKey, config: config() },
        }),
      ),
    onSuccess: async (data) => {
      await queryClient.invalidateQueries({ queryKey: ["training-jobs"] });
      onDone();
      if (data.job?.id) void navigate(`/training/${data.job.id}`);
    },
  });
  const { fields, form } = splitError(create.error, FORM_FIELDS);
  const set = (key: Key, value: string) => {
    setValues((v) => ({ ...v, [key]: value }));
    if (create.isError) create.reset();
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (create.isPending) return;
    create.mutate();
  };

  const defaultConfig = defaults.data?.config;
  const limits = defaults.data?.limits ?? {};
  const aliases = Object.keys(picked?.aliases ?? {}).sort();

  return (
    <form onSubmit={submit} className="grid gap-4" noValidate>
      <DialogHeader>
        <DialogTitle>New training job</DialogTitle>
        <DialogDescription>
          A LoRA or DoRA fine-tune of a model version on a chat, completion or text dataset. Leave a field empty to use the default shown.
        </DialogDescription>
      </DialogHeader>
      <div className="grid gap-4 sm:grid-cols-2">
        <FormField id="job-model" label="Model" error={fields.model} className="content-start">
          <Input
            list={`${id}-models`}
            value={model}
            autoFocus
            autoComplete="off"
            placeholder="Search models"
            onChange={(e) => {
              setModel(e.target.value);
              setVersion("");
              if (create.isError) create.reset();
            }}
            className="font-mono"
          />
        </FormField>
        <datalist id={`${id}-models`}>
          {models.data?.models?.map((m) => <option key={m.name} value={m.name} />)}
        </datalist>
        <div className="grid content-start gap-1.5">
          <Label htmlFor="job-version">Version</Label>
          <NativeSelect id="job-version" value={version} onChange={(e) => setVersion(e.target.value)} disabled={!picked}>
            <option value="">{picked?.latestVersion ? `Latest (v${picked.latestVersion})` : "Latest"}</option>
            {aliases.map((alias) => (
              <option key={alias} value={`@${alias}`}>
                @{alias} (v{picked?.aliases?.[alias]})
              </option>
            ))}
            {versions.data?.versions?.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version}
                {v.kind === "MODEL_VERSION_KIND_ADAPTER" ? " (adapter)" : ""}
              </option>
            ))}
          </NativeSelect>
          <p className="text-xs text-muted-foreground">
            Trains <span className="font-mono">{reference() || "—"}</span>
          </p>
        </div>
        <FormField id="job-dataset" label="Dataset" error={fields.dataset} className="content-start">
          <Input
            list={`${id}-datasets`}
            value={dataset}
            autoComplete="off"
            placeholder="Search datasets"
            onChange={(e) => {
              setDataset(e.target.value);
              if (create.isError) create.reset();
            }}
            className="font-mono"
          />
        </FormField>
        <datalist id={`${id}-datasets`}>
          {datasets.data?.datasets?.map((d) => <option key={d.name} value={d.name} />)}
        </datalist>
        <FormField id="job-output-model" label="Output model" error={fields.outputModel} className="content-start">
          <Input
            value={outputModel}
            autoComplete="off"
            placeholder={model.trim() ? `${model.trim()} (the base model)` : "the base model"}
            onChange={(e) => setOutputModel(e.target.value)}
            className="font-mono"
          />
        </FormField>
      </div>
      <fieldset className="grid gap-3 rounded-md border p-3">
        <legend className="px-1 text-sm font-medium">Configuration</legend>
        {defaults.isError && <FormError message="Could not read the trainer's defaults; empty fields still get them." />}
        <div className="grid gap-3 sm:grid-cols-3">
          {CONFIG_FIELDS.map(({ key, label }) => {
            const error = fields[`config.${key}`];
            const fallback = defaultConfig ? configValue(defaultConfig, key) : "…";
            const hint = [`Default: ${fallback}`, boundsText(limits[key]), HINTS[key]].filter(Boolean).join(" · ");
            const common = { value: values[key] ?? "", onChange: (e: ChangeEvent<HTMLInputElement | HTMLSelectElement>) => set(key, e.target.value) };
            return (
              <FormField key={key} id={`job-config-${key}`} label={label} error={error} hint={hint} className="content-start gap-1">
                {ENUMS[key] ? (
                  <NativeSelect {...common}>
                    <option value="">Default ({fallback})</option>
                    {ENUMS[key].map((v) => (
                      <option key={v} value={v}>
                        {configValue({ [key]: v }, key)}
                      </option>
                    ))}
                  </NativeSelect>
                ) : BOOLEANS.includes(key) ? (
                  <NativeSelect {...common}>
                    <option value="">Default ({fallback})</option>
                    <option value="yes">yes</option>
                    <option value="no">no</option>
                  </NativeSelect>
                ) : (
                  <Input
                    {...common}
                    inputMode={TEXTS.includes(key) ? "text" : "decimal"}
                    autoComplete="off"
                    placeholder={fallback}
                    className="font-mono"
                  />
                )}
              </FormField>
            );
          })}
        </div>
      </fieldset>
      <FormError message={form} />
      <DialogFooter>
        <Button type="button" variant="outline" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" disabled={create.isPending}>
          {create.isPending ? "Queuing…" : "Start training"}
        </Button>
      </DialogFooter>
    </form>
  );
}
