import ComingSoon from "@/pages/ComingSoon";

export default function ServingPage() {
  return <ComingSoon page="Serving" />;
}
