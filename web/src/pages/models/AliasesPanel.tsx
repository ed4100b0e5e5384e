/**
 * The model's aliases and the two ways to move one: Promote (any alias, new or
 * existing, to any version) and Roll back (to the version before its last move).
 * Both go through a confirmation that shows the move before it is made.
 */
import { ArrowUpCircle, Undo2 } from "lucide-react";
import { type FormEvent, useId, useState } from "react";
import { Link } from "react-router";

import type { AliasMove, Model, ModelVersion } from "@/api/types";
import { useSetAlias } from "@/api/useSetAlias";
import { FormError, FormField } from "@/components/FormField";
import { AliasBadge } from "@/components/models/AliasBadge";
import { Timestamp } from "@/components/models/Timestamp";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { NativeSelect } from "@/components/ui/native-select";
import { splitError } from "@/lib/forms";
import { rollbackTarget, versionLabel } from "@/pages/models/modelsLogic";

/** "prod: v1 → v2", the move a confirmation shows. */
function MovePreview({ alias, before, after }: { alias: string; before: string | undefined; after: string | undefined }) {
  return (
    <p className="rounded-md border bg-muted/50 px-3 py-2 font-mono text-base" data-testid="alias-move-preview">
      <span className="font-semibold">{alias || "…"}</span>: {versionLabel(before)} → {versionLabel(after)}
    </p>
  );
}

export function AliasesPanel({
  model,
  versions,
  histories,
  promoting,
  setPromoting,
}: {
  model: Model;
  versions: ModelVersion[];
  histories: Record<string, AliasMove[] | undefined>;
  /** The Promote dialog: closed (undefined), or open with a version picked ("" for the latest). */
  promoting: string | undefined;
  setPromoting: (version: string | undefined) => void;
}) {
  const name = model.name ?? "";
  const aliases = Object.entries(model.aliases ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const [rollingBack, setRollingBack] = useState<string | undefined>(undefined);

  return (
    <section aria-labelledby="aliases-heading" className="grid content-start gap-3 rounded-lg border bg-card p-4">
      <div className="flex items-center justify-between gap-2">
        <h2 id="aliases-heading" className="text-base font-semibold">
          Aliases
        </h2>
        <Button size="sm" onClick={() => setPromoting("")} disabled={versions.length === 0} title={versions.length === 0 ? "Register a version first" : undefined}>
          <ArrowUpCircle /> Promote
        </Button>
      </div>
      {aliases.length === 0 ? (
        <p className="text-sm text-muted-foreground">
          No aliases yet. An alias (e.g. <span className="font-mono">prod</span>) names a version, so clients can ask for{" "}
          <span className="font-mono">{name}@prod</span> and follow it as it moves.
        </p>
      ) : (
        <ul className="grid gap-2">
          {aliases.map(([alias, version]) => {
            const moves = histories[alias];
            const latest = moves?.reduce<AliasMove | undefined>((a, b) => (!a || BigInt(b.position ?? "0") > BigInt(a.position ?? "0") ? b : a), undefined);
            const target = rollbackTarget(moves);
            return (
              <li key={alias} className="flex flex-wrap items-center justify-between gap-2 rounded-md border px-3 py-2" data-testid={`alias-row-${alias}`}>
                <div className="grid gap-0.5">
                  <div className="flex items-center gap-2">
                    <AliasBadge alias={alias} />
                    <span aria-hidden="true" className="text-muted-foreground">→</span>
                    <Link to={`/models/${encodeURIComponent(name)}/versions/${version}`} className="font-mono text-sm text-primary underline-offset-4 hover:underline">
                      v{version}
                    </Link>
                  </div>
                  {latest && (
                    <span className="text-xs text-muted-foreground">
                      moved by {latest.principal || "unknown"} · <Timestamp value={latest.moveTime} relative />
                    </span>
                  )}
                </div>
                <Button
                  size="sm"
                  variant="outline"
                  aria-label={`Roll back ${alias}`}
                  disabled={!target}
                  title={target ? `Point ${alias} back at v${target}` : `${alias} has no earlier version to roll back to`}
                  onClick={() => setRollingBack(alias)}
                >
                  <Undo2 /> Roll back
                </Button>
              </li>
            );
          })}
        </ul>
      )}
      <Dialog open={promoting !== undefined} onOpenChange={(open) => !open && setPromoting(undefined)}>
        <DialogContent>
          {promoting !== undefined && (
            <PromoteForm model={model} versions={versions} initialVersion={promoting} onDone={() => setPromoting(undefined)} />
          )}
        </DialogContent>
      </Dialog>
      <Dialog open={rollingBack !== undefined} onOpenChange={(open) => !open && setRollingBack(undefined)}>
        <DialogContent>
          {rollingBack !== undefined && (
            <RollbackForm
              name={name}
              alias={rollingBack}
              current={model.aliases?.[rollingBack]}
              target={rollbackTarget(histories[rollingBack])}
              onDone={() => setRollingBack(undefined)}
            />
          )}
        </DialogContent>
      </Dialog>
    </section>
  );
}

function PromoteForm({
  model,
  versions,
  initialVersion,
  onDone,
}: {
  model: Model;
  versions: ModelVersion[];
  initialVersion: string;
  onDone: () => void;
}) {
  const id = useId();
  const name = model.name ?? "";
  const existing = Object.keys(model.aliases ?? {}).sort();
  const [alias, setAlias] = useState(existing.includes("prod") ? "prod" : (existing[0] ?? "prod"));
  const [version, setVersion] = useState(initialVersion || (versions[0]?.version ?? ""));
  const setAliasMutation = useSetAlias(name);
  const { fields, form } = splitError(setAliasMutation.error, ["alias", "version"]);
  const before = model.aliases?.[alias.trim()];
  const unchanged = before === version;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setAliasMutation.mutate({ alias: alias.trim(), version }, { onSuccess: onDone });
  };

  return (
    <form onSubmit={submit} className="grid gap-4" noValidate>
      <DialogHeader>
        <DialogTitle>Promote a version</DialogTitle>
        <DialogDescription>Point an alias at a version. Requests for {name}@alias use it from the next request on.</DialogDescription>
      </DialogHeader>
      <div className="grid grid-cols-2 gap-3">
        <FormField id={`${id}-alias`} label="Alias" error={fields.alias}>
          <Input
            list={`${id}-aliases`}
            value={alias}
            autoComplete="off"
            onChange={(e) => {
              setAlias(e.target.value);
              setAliasMutation.reset();
            }}
            className="font-mono"
          />
        </FormField>
        <datalist id={`${id}-aliases`}>
          {existing.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
        <FormField id={`${id}-version`} label="Version" error={fields.version}>
          <NativeSelect
            value={version}
            onChange={(e) => {
              setVersion(e.target.value);
              setAliasMutation.reset();
            }}
          >
            {versions.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version}
                {v.description ? ` — ${v.description.slice(0, 40)}` : ""}
              </option>
            ))}
          </NativeSelect>
        </FormField>
      </div>
      <div className="grid gap-1.5">
        <span className="text-sm font-medium">This will move</span>
        <MovePreview alias={alias.trim()} before={before} after={version} />
        {!before && alias.trim() && <p className="text-xs text-muted-foreground">{alias.trim()} is a new alias.</p>}
        {unchanged && <p className="text-xs text-muted-foreground">{alias.trim()} already points at v{version}.</p>}
      </div>
      <FormError message={form} />
      <DialogFooter>
        <Button type="button" variant="outline" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" disabled={setAliasMutation.isPending || !alias.trim() || !version || unchanged}>
          {setAliasMutation.isPending ? "Promoting…" : "Confirm promotion"}
        </Button>
      </DialogFooter>
    </form>
  );
}

function RollbackForm({
  name,
  alias,
  current,
  target,
  onDone,
}: {
  name: string;
  alias: string;
  current: string | undefined;
  target: string | undefined;
  onDone: () => void;
}) {
  const setAliasMutation = useSetAlias(name);
  const { form } = splitError(setAliasMutation.error, []);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (target) setAliasMutation.mutate({ alias, version: target }, { onSuccess: onDone });
  };
  return (
    <form onSubmit={submit} className="grid gap-4">
      <DialogHeader>
        <DialogTitle>Roll back {alias}</DialogTitle>
        <DialogDescription>Point {alias} back at the version it had before its last move. This is recorded as a new move.</DialogDescription>
      </DialogHeader>
      <MovePreview alias={alias} before={current} after={target} />
      <FormError message={form} />
      <DialogFooter>
        <Button type="button" variant="outline" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" variant="destructive" disabled={setAliasMutation.isPending || !target}>
          {setAliasMutation.isPending ? "Rolling back…" : "Confirm roll back"}
        </Button>
      </DialogFooter>
    </form>
  );
}
