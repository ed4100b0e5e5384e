/** Short names for the generated API shapes (web/src/api/schema.d.ts is generated; never edit it). */
import type { components, paths } from "@/api/schema";

type Schemas = components["schemas"];

export type Status = Schemas["google.rpc.Status"];
export type Model = Schemas["mlxhub.v1.Model"];
export type ModelVersion = Schemas["mlxhub.v1.ModelVersion"];
export type Dataset = Schemas["mlxhub.v1.Dataset"];
export type Lineage = Schemas["mlxhub.v1.Lineage"];
export type AliasMove = Schemas["mlxhub.v1.AliasMove"];
export type ArtifactFile = Schemas["mlxhub.v1.ArtifactFile"];
export type HubEvent = Schemas["mlxhub.v1.Event"];
export type ReadEventsResponse = Schemas["mlxhub.v1.ReadEventsResponse"];
export type TrainingJob = Schemas["mlxhub.v1.TrainingJob"];
export type LoadedModel = Schemas["mlxhub.v1.LoadedModel"];
export type GetLineageResponse = Schemas["mlxhub.v1.GetLineageResponse"];
export type WhoAmIResponse = Schemas["mlxhub.v1.WhoAmIResponse"];

/** Query parameters of `GET /v1/events` (ReadEvents), as the gateway takes them. */
export type ReadEventsQuery = NonNullable<paths["/v1/events"]["get"]["parameters"]["query"]>;
