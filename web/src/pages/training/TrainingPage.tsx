import ComingSoon from "@/pages/ComingSoon";

export default function TrainingPage() {
  return <ComingSoon page="Training" />;
}
