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
const ComingSoon = lazy(() => import("@/pages/ComingSoon"));
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
      { path: "training", element: <ComingSoon page="Training" /> },
      { path: "training/:id", element: <ComingSoon page="Training" /> },
      { path: "playground", element: <ComingSoon page="Playground" /> },
      { path: "serving", element: <ComingSoon page="Serving" /> },
      { path: "audit", element: <AuditPage /> },
      { path: "*", element: <NotFound /> },
    ],
  },
];
