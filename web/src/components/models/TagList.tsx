import { Badge } from "@/components/ui/badge";

/** A model's tags as compact key=value badges; nothing for none. */
export function TagList({ tags, limit }: { tags: Record<string, string> | undefined; limit?: number }) {
  const entries = Object.entries(tags ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return <span className="text-muted-foreground">—</span>;
  const shown = limit === undefined ? entries : entries.slice(0, limit);
  return (
    <span className="flex flex-wrap gap-1">
      {shown.map(([key, value]) => (
        <Badge key={key} variant="outline" className="font-mono font-normal">
          {value ? `${key}=${value}` : key}
        </Badge>
      ))}
      {shown.length < entries.length && (
        <span className="text-xs text-muted-foreground">+{entries.length - shown.length}</span>
      )}
    </span>
  );
}
