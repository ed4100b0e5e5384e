import ComingSoon from "@/pages/ComingSoon";

export default function CompareJobsPage() {
  return <ComingSoon page="Training" />;
}
