/** Ready-to-run snippets in tabs (curl / Python / CLI ...), each with a copy button. */
import { CopyButton } from "@/components/CopyButton";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";

export interface Snippet {
  id: string;
  /** Tab title, e.g. "curl". */
  label: string;
  code: string;
}

export function CodeSnippet({ snippets, label }: { snippets: Snippet[]; label: string }) {
  if (!snippets.length) return null;
  return (
    <Tabs defaultValue={snippets[0]?.id}>
      <TabsList aria-label={label}>
        {snippets.map((s) => (
          <TabsTrigger key={s.id} value={s.id}>
            {s.label}
          </TabsTrigger>
        ))}
      </TabsList>
      {snippets.map((s) => (
        <TabsContent key={s.id} value={s.id}>
          <div className="relative rounded-lg border bg-muted/50">
            <CopyButton value={s.code} label={`Copy ${s.label} snippet`} className="absolute top-1.5 right-1.5" />
            <pre className="overflow-x-auto p-3 pr-12 font-mono text-xs leading-relaxed" tabIndex={0} aria-label={`${s.label} snippet`}>
              <code>{s.code}</code>
            </pre>
          </div>
        </TabsContent>
      ))}
    </Tabs>
  );
}
