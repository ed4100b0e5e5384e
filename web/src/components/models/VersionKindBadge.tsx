import type { ModelVersion } from "@/api/types";
import { Badge } from "@/components/ui/badge";
import { kindLabel } from "@/pages/models/modelsLogic";

/** "full", or "adapter on base N" for a LoRA adapter version. */
export function VersionKindBadge({ version }: { version: Pick<ModelVersion, "kind" | "baseVersion" | "model"> }) {
  const adapter = version.kind === "MODEL_VERSION_KIND_ADAPTER";
  return (
    <Badge variant="outline" className={adapter ? "border-primary/40" : undefined}>
      {kindLabel(version)}
    </Badge>
  );
}
