import ComingSoon from "@/pages/ComingSoon";

export default function JobDetailPage() {
  return <ComingSoon page="Training" />;
}
