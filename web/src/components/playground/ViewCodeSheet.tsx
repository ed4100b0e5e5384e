/** "View code": the request(s) the playground sends next, as curl, Python and mlx-hub. */
import { CodeSnippet } from "@/components/CodeSnippet";
import { snippetsFor } from "@/components/playground/snippets";
import { Sheet, SheetContent, SheetDescription, SheetTitle } from "@/components/ui/sheet";
import type { GenerateStreamRequest } from "@/lib/conversations";

export function ViewCodeSheet({ open, onOpenChange, requests }: { open: boolean; onOpenChange: (open: boolean) => void; requests: GenerateStreamRequest[] }) {
  const origin = globalThis.location?.origin ?? "http://localhost:8080";
  const sides = requests.length > 1;
  return (
    <Sheet open={open} onOpenChange={onOpenChange}>
      <SheetContent className="right-0 left-auto w-[44rem] max-w-[95%] overflow-y-auto border-r-0 border-l p-5">
        <div className="grid gap-1 pr-8">
          <SheetTitle>View code</SheetTitle>
          <SheetDescription>
            The request the playground sends next (with the message being typed), ready to run elsewhere.
            {sides && " Side by side sends one request per model."}
          </SheetDescription>
        </div>
        {requests.map((request, column) => (
          <section key={column} className="grid gap-2" aria-label={sides ? `Model ${column === 0 ? "A" : "B"} request` : undefined}>
            {sides && (
              <h2 className="text-sm font-semibold">
                {column === 0 ? "A" : "B"}: <span className="font-mono">{request.model}</span>
              </h2>
            )}
            <CodeSnippet snippets={snippetsFor(request, origin)} label={sides ? `Request ${column === 0 ? "A" : "B"} as code` : "Request as code"} />
          </section>
        ))}
      </SheetContent>
    </Sheet>
  );
}
