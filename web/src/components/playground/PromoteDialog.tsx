/**
 * "Promote this one": point an alias at the version that gave the answer, after a
 * confirmation that shows the move (alias: before → after).
 */
import { useQuery } from "@tanstack/react-query";
import { type FormEvent, useId, useState } from "react";

import { api, call } from "@/api/client";
import { useSetAlias } from "@/api/useSetAlias";
import { FormError, FormField } from "@/components/FormField";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { splitError } from "@/lib/forms";

/** `smollm2/versions/2` → ["smollm2", "2"]. */
export function parseVersionName(modelVersion: string): [string, string] | undefined {
  const match = /^(.+)\/versions\/(\d+)$/.exec(modelVersion);
  return match ? [match[1]!, match[2]!] : undefined;
}

export function PromoteDialog({
  modelVersion,
  suggestedAlias,
  onClose,
}: {
  /** The version to promote (`name/versions/N`); the dialog is closed when undefined. */
  modelVersion: string | undefined;
  suggestedAlias: string;
  onClose: () => void;
}) {
  return (
    <Dialog open={modelVersion !== undefined} onOpenChange={(open) => !open && onClose()}>
      <DialogContent>{modelVersion && <PromoteForm modelVersion={modelVersion} suggestedAlias={suggestedAlias} onDone={onClose} />}</DialogContent>
    </Dialog>
  );
}

function PromoteForm({ modelVersion, suggestedAlias, onDone }: { modelVersion: string; suggestedAlias: string; onDone: () => void }) {
  const id = useId();
  const [name, version] = parseVersionName(modelVersion) ?? ["", ""];
  const [alias, setAlias] = useState(suggestedAlias);
  const model = useQuery({
    queryKey: ["model", name],
    queryFn: () => call(api.GET("/v1/models/{name}", { params: { path: { name } } })),
    enabled: !!name,
  });
  const mutation = useSetAlias(name);
  const { fields, form } = splitError(mutation.error, ["alias", "version"]);
  const before = model.data?.model?.aliases?.[alias.trim()];
  const unchanged = before === version;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    mutation.mutate({ alias: alias.trim(), version }, { onSuccess: onDone });
  };
  return (
    <form onSubmit={submit} className="grid gap-4" noValidate>
      <DialogHeader>
        <DialogTitle>Promote {modelVersion}</DialogTitle>
        <DialogDescription>Point an alias at this version. Requests for {name}@alias use it from the next request on.</DialogDescription>
      </DialogHeader>
      <FormField id={`${id}-alias`} label="Alias" error={fields.alias}>
        <Input
          value={alias}
          autoComplete="off"
          className="font-mono"
          onChange={(e) => {
            setAlias(e.target.value);
            mutation.reset();
          }}
        />
      </FormField>
      <div className="grid gap-1.5">
        <span className="text-sm font-medium">This will move</span>
        <p className="rounded-md border bg-muted/50 px-3 py-2 font-mono text-base" data-testid="alias-move-preview">
          <span className="font-semibold">{alias.trim() || "…"}</span>: {before ? `v${before}` : "(none)"} → v{version}
        </p>
        {unchanged && <p className="text-xs text-muted-foreground">{alias.trim()} already points at v{version}.</p>}
      </div>
      <FormError message={form ?? fields.version} />
      <DialogFooter>
        <Button type="button" variant="outline" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" disabled={mutation.isPending || !alias.trim() || unchanged || !model.isSuccess}>
          {mutation.isPending ? "Promoting…" : "Confirm promotion"}
        </Button>
      </DialogFooter>
    </form>
  );
}
