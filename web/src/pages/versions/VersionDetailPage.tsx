import { PageHeader } from "@/components/PageHeader";

export default function VersionDetailPage() {
  return <PageHeader title="VersionDetailPage" description="Not built yet." />;
}
