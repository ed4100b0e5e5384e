import { PageHeader } from "@/components/PageHeader";

export default function DatasetsPage() {
  return <PageHeader title="DatasetsPage" description="Not built yet." />;
}
