/**
 * Every page of the dashboard and its URL. Pages are loaded on demand, so the
 * first load carries only the shell. Paths mirror the API's resource names.
 */
import { lazy } from "react";
import type { RouteObject } from "react-router";

import { Layout } from "@/app/Layout";

const Overview = lazy(() => import("@/pages/Overview"));
const ModelsPage = lazy(() => import("@/pages/models/ModelsPage"));
const ModelDetailPage = lazy(() => import("@/pages/models/ModelDetailPage"));
const VersionDetailPage = lazy(() => import("@/pages/versions/VersionDetailPage"));
const CompareVersionsPage = lazy(() => import("@/pages/versions/CompareVersionsPage"));
const DatasetsPage = lazy(() => import("@/pages/datasets/DatasetsPage"));
const DatasetDetailPage = lazy(() => import("@/pages/datasets/DatasetDetailPage"));
const AuditPage = lazy(() => import("@/pages/audit/AuditPage"));
const TrainingPage = lazy(() => import("@/pages/training/TrainingPage"));
const JobDetailPage = lazy(() => import("@/pages/training/JobDetailPage"));
const CompareJobsPage = lazy(() => import("@/pages/training/CompareJobsPage"));
const PlaygroundPage = lazy(() => import("@/pages/playground/PlaygroundPage"));
const ServingPage = lazy(() => import("@/pages/serving/ServingPage"));
const NotFound = lazy(() => import("@/pages/NotFound"));

export const routes: RouteObject[] = [
  {
    element: <Layout />,
    children: [
      { index: true, element: <Overview /> },
      { path: "models", element: <ModelsPage /> },
      { path: "models/:name", element: <ModelDetailPage /> },
      { path: "models/:name/versions/:version", element: <VersionDetailPage /> },
      // ?a=<version>&b=<version>
      { path: "models/:name/compare", element: <CompareVersionsPage /> },
      { path: "datasets", element: <DatasetsPage /> },
      { path: "datasets/:name", element: <DatasetDetailPage /> },
      { path: "training", element: <TrainingPage /> },
      // ?ids=<id>,<id>[,...]
      { path: "training/compare", element: <CompareJobsPage /> },
      { path: "training/:id", element: <JobDetailPage /> },
      { path: "playground", element: <PlaygroundPage /> },
      { path: "serving", element: <ServingPage /> },
      { path: "audit", element: <AuditPage /> },
      { path: "*", element: <NotFound /> },
    ],
  },
];
