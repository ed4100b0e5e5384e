import { PageHeader } from "@/components/PageHeader";

export default function CompareVersionsPage() {
  return <PageHeader title="CompareVersionsPage" description="Not built yet." />;
}
