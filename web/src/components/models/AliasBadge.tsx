import { Tag } from "lucide-react";

import { Badge } from "@/components/ui/badge";
import { cn } from "@/lib/utils";

/** An alias name (optionally with the version it points at), e.g. "prod → v2". */
export function AliasBadge({ alias, version, className }: { alias: string; version?: string; className?: string }) {
  return (
    <Badge variant="secondary" className={cn("font-mono", className)} title={version ? `alias ${alias} → version ${version}` : `alias ${alias}`}>
      <Tag aria-hidden="true" />
      {alias}
      {version && <span className="text-muted-foreground">→ v{version}</span>}
    </Badge>
  );
}
