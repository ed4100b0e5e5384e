import { relativeTime } from "@/components/models/time";

/** A time in the viewer's local time, the full ISO string in its title. */
export function Timestamp({ value, relative = false }: { value: string | undefined; relative?: boolean }) {
  if (!value) return <span className="text-muted-foreground">—</span>;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return <span>{value}</span>;
  return (
    <time dateTime={value} title={date.toISOString()} className="whitespace-nowrap">
      {relative ? relativeTime(date) : date.toLocaleString()}
    </time>
  );
}
