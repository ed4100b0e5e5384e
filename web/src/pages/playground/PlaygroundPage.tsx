import ComingSoon from "@/pages/ComingSoon";

export default function PlaygroundPage() {
  return <ComingSoon page="Playground" />;
}
