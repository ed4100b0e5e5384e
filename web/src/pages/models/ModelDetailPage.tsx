/**
 * One model: what it is, its versions (pick two to compare), its aliases with
 * promote / roll back, and the alias timeline. The page follows the model's
 * events, so a change made elsewhere (the CLI, another tab) shows up by itself.
 */
import { useQueries, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";

import { api, call, errorMessage } from "@/api/client";
import { ApiError } from "@/api/errors";
import type { AliasMove, ModelVersion } from "@/api/types";
import { useModelEvents } from "@/api/useModelEvents";
import { FormError } from "@/components/FormField";
import { TagList } from "@/components/models/TagList";
import { Timestamp } from "@/components/models/Timestamp";
import { PageHeader } from "@/components/PageHeader";
import { AliasesPanel } from "@/pages/models/AliasesPanel";
import { AliasTimeline } from "@/pages/models/AliasTimeline";
import { EditModelDialog } from "@/pages/models/EditModelDialog";
import { RegisterVersionDialog } from "@/pages/models/RegisterVersionDialog";
import { historyBehind, versionsBehind } from "@/pages/models/modelsLogic";
import { VersionsTable } from "@/pages/models/VersionsTable";

const CATCH_UP_MS = 300;

/** Read again soon, unless the model was read over a minute ago (the projection is stuck: stop asking). */
function catchingUp(modelReadAt: number): number | false {
  return Date.now() - modelReadAt < 60_000 ? CATCH_UP_MS : false;
}

/** Every version of a model (pages of 100), newest first. */
async function listAllVersions(name: string): Promise<ModelVersion[]> {
  const versions: ModelVersion[] = [];
  let pageToken: string | undefined;
  for (let page = 0; page < 50; page++) {
    const response = await call(api.GET("/v1/models/{name}/versions", { params: { path: { name }, query: { pageSize: 100, pageToken } } }));
    versions.push(...(response.versions ?? []));
    pageToken = response.nextPageToken;
    if (!pageToken) break;
  }
  return versions.sort((a, b) => Number(b.version ?? 0) - Number(a.version ?? 0));
}

export default function ModelDetailPage() {
  const { name = "" } = useParams();
  const [promoting, setPromoting] = useState<string | undefined>(undefined);

  const model = useQuery({
    queryKey: ["model", name],
    queryFn: () => call(api.GET("/v1/models/{name}", { params: { path: { name } } })).then((r) => r.model ?? {}),
    retry: (count, error) => !(error instanceof ApiError && error.httpStatus === 404) && count < 2,
  });
  // Versions and alias histories come from the read model, filled a moment after each event:
  // while one is behind the model itself, read it again shortly (for up to a minute).
  const versions = useQuery({
    queryKey: ["model", name, "versions"],
    queryFn: () => listAllVersions(name),
    enabled: model.isSuccess,
    refetchInterval: (query) => (versionsBehind(model.data, query.state.data) ? catchingUp(model.dataUpdatedAt) : false),
  });
  const aliasNames = Object.keys(model.data?.aliases ?? {}).sort();
  const historyQueries = useQueries({
    queries: aliasNames.map((alias) => ({
      queryKey: ["model", name, "alias-history", alias],
      queryFn: () => call(api.GET("/v1/models/{name}/aliases/{alias}/history", { params: { path: { name, alias } } })),
      refetchInterval: (query: { state: { data?: { moves?: AliasMove[] } } }) =>
        historyBehind(model.data?.aliases?.[alias], query.state.data?.moves) ? catchingUp(model.dataUpdatedAt) : false,
    })),
  });
  const histories: Record<string, AliasMove[] | undefined> = {};
  aliasNames.forEach((alias, i) => (histories[alias] = historyQueries[i]?.data?.moves));

  useModelEvents(name);

  if (model.isError) {
    const missing = model.error instanceof ApiError && model.error.httpStatus === 404;
    return (
      <div>
        <PageHeader title={name} description={missing ? "No such model." : undefined} />
        <FormError message={missing ? `There is no model named "${name}".` : `Could not load ${name}: ${errorMessage(model.error)}`} />
        <p className="mt-4 text-sm">
          <Link to="/models" className="text-primary underline-offset-4 hover:underline">
            Back to all models
          </Link>
        </p>
      </div>
    );
  }

  const m = model.data;
  const anyHistoryLoading = historyQueries.some((q) => q.isPending);

  return (
    <div className="grid gap-6">
      <div>
        <nav aria-label="Breadcrumb" className="mb-2 text-sm text-muted-foreground">
          <Link to="/models" className="underline-offset-4 hover:underline">
            Models
          </Link>{" "}
          / <span className="font-mono">{name}</span>
        </nav>
        <PageHeader
          title={<span className="font-mono">{name}</span>}
          description={m ? m.description || <span className="italic">No description.</span> : "Loading…"}
          actions={
            m && (
              <>
                <EditModelDialog model={m} />
                <RegisterVersionDialog name={name} />
              </>
            )
          }
        />
        {m && (
          <dl className="-mt-2 grid grid-cols-[max-content_1fr] gap-x-6 gap-y-1.5 text-sm sm:grid-cols-[max-content_1fr_max-content_1fr]">
            <dt className="text-muted-foreground">Base model</dt>
            <dd className="font-mono break-all">{m.baseModel || "—"}</dd>
            <dt className="text-muted-foreground">Latest version</dt>
            <dd className="font-mono">{m.latestVersion && m.latestVersion !== "0" ? `v${m.latestVersion}` : "none yet"}</dd>
            <dt className="text-muted-foreground">Created by</dt>
            <dd>{m.createdBy || "—"}</dd>
            <dt className="text-muted-foreground">Created</dt>
            <dd>
              <Timestamp value={m.createTime} />
            </dd>
            <dt className="text-muted-foreground">Tags</dt>
            <dd>
              <TagList tags={m.tags} />
            </dd>
            <dt className="text-muted-foreground">Updated</dt>
            <dd>
              <Timestamp value={m.updateTime} />
            </dd>
          </dl>
        )}
      </div>

      <section aria-labelledby="versions-heading" className="grid gap-2">
        <h2 id="versions-heading" className="text-lg font-semibold">
          Versions {versions.data && <span className="text-sm font-normal text-muted-foreground">({versions.data.length})</span>}
        </h2>
        {versions.isError && <FormError message={`Could not list versions: ${errorMessage(versions.error)}`} />}
        <VersionsTable
          name={name}
          versions={versions.data ?? []}
          loading={versions.isPending && !versions.isError}
          onPromote={setPromoting}
          empty={
            <div className="grid justify-items-center gap-1">
              <p className="font-medium">No versions yet.</p>
              <p className="text-sm text-muted-foreground">
                Register a model directory with &ldquo;Register version&rdquo;, or train an adapter on one.
              </p>
            </div>
          }
        />
      </section>

      {m && (
        <div className="grid items-start gap-6 lg:grid-cols-2">
          <AliasesPanel model={m} versions={versions.data ?? []} histories={histories} promoting={promoting} setPromoting={setPromoting} />
          <AliasTimeline name={name} histories={histories} loading={anyHistoryLoading} />
        </div>
      )}
    </div>
  );
}
