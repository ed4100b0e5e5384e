import { PageHeader } from "@/components/PageHeader";

export default function DatasetDetailPage() {
  return <PageHeader title="DatasetDetailPage" description="Not built yet." />;
}
