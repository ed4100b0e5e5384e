/**
 * Pick what to talk to: a model (typed, with the hub's models suggested as you type)
 * and then one of its aliases or versions, adapters included. Typing a whole
 * reference (`name@alias`, `name/versions/N`) works too.
 */
import { useQuery } from "@tanstack/react-query";
import { useId } from "react";

import { api, call } from "@/api/client";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { NativeSelect } from "@/components/ui/native-select";

const NAME = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;

/** `name@alias` → ["name", "@alias"]; `name/versions/3` → ["name", "/versions/3"]; `name` → ["name", ""]. */
export function splitReference(reference: string): [string, string] {
  const at = reference.indexOf("@");
  if (at >= 0) return [reference.slice(0, at), reference.slice(at)];
  const slash = reference.indexOf("/versions/");
  if (slash >= 0) return [reference.slice(0, slash), reference.slice(slash)];
  return [reference, ""];
}

function kindLabel(kind: string | undefined): string {
  return kind === "MODEL_VERSION_KIND_ADAPTER" ? "adapter" : kind === "MODEL_VERSION_KIND_FULL" ? "full" : "";
}

export function ReferencePicker({
  label,
  value,
  onChange,
  disabled,
  stacked,
}: {
  label: string;
  value: string;
  onChange: (reference: string) => void;
  disabled?: boolean;
  /** Model above version (a narrow column, side by side). */
  stacked?: boolean;
}) {
  const id = useId();
  const [name, suffix] = splitReference(value);
  const validName = NAME.test(name);
  const models = useQuery({
    queryKey: ["models", "playground", name],
    queryFn: () => call(api.GET("/v1/models", { params: { query: { query: name || undefined, pageSize: 50 } } })),
    staleTime: 30_000,
  });
  const model = useQuery({
    queryKey: ["model", name],
    queryFn: () => call(api.GET("/v1/models/{name}", { params: { path: { name } } })),
    enabled: validName,
    retry: false,
  });
  const versions = useQuery({
    queryKey: ["model", name, "versions", "playground"],
    queryFn: () => call(api.GET("/v1/models/{name}/versions", { params: { path: { name }, query: { pageSize: 200 } } })),
    enabled: validName && model.isSuccess,
  });
  const aliases = Object.entries(model.data?.model?.aliases ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const list = [...(versions.data?.versions ?? [])].sort((a, b) => Number(b.version ?? 0) - Number(a.version ?? 0));
  const known = new Set(["", ...aliases.map(([a]) => `@${a}`), ...list.map((v) => `/versions/${v.version}`)]);

  return (
    <div className="grid gap-1.5">
      <div className={stacked ? "grid gap-2" : "grid grid-cols-[minmax(0,1fr)_minmax(0,1fr)] gap-2"}>
        <div className="grid gap-1">
          <Label htmlFor={`${id}-model`}>{label}</Label>
          <Input
            id={`${id}-model`}
            list={`${id}-models`}
            value={name}
            disabled={disabled}
            autoComplete="off"
            spellCheck={false}
            placeholder="model name"
            className="font-mono"
            onChange={(e) => {
              const typed = e.target.value.trim();
              const [n, s] = splitReference(typed);
              onChange(s ? n + s : n + suffix);
            }}
          />
          <datalist id={`${id}-models`}>
            {(models.data?.models ?? []).map((m) => (
              <option key={m.name} value={m.name ?? ""}>
                {String(m.description ?? "")}
              </option>
            ))}
          </datalist>
        </div>
        <div className="grid gap-1">
          <Label htmlFor={`${id}-version`}>{label} version</Label>
          <NativeSelect id={`${id}-version`} value={suffix} disabled={disabled || !name} onChange={(e) => onChange(name + e.target.value)} className="font-mono">
            <option value="">latest version</option>
            {aliases.map(([alias, version]) => (
              <option key={alias} value={`@${alias}`}>
                @{alias} → v{version}
              </option>
            ))}
            {list.map((v) => (
              <option key={v.version} value={`/versions/${v.version}`}>
                v{v.version}
                {kindLabel(v.kind) ? ` · ${kindLabel(v.kind)}` : ""}
                {v.baseVersion ? ` of ${v.baseVersion}` : ""}
              </option>
            ))}
            {!known.has(suffix) && <option value={suffix}>{suffix}</option>}
          </NativeSelect>
        </div>
      </div>
      <p className="text-xs text-muted-foreground">
        {name && validName && model.isError ? (
          <span className="text-destructive">No model named {name}.</span>
        ) : (
          <>
            Reference: <span className="font-mono text-foreground">{value || "—"}</span>
          </>
        )}
      </p>
    </div>
  );
}
