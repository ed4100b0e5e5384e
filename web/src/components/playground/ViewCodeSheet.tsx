/** "View code": the request the playground is about to send, as curl, Python and mlx-hub. */
import { CodeSnippet } from "@/components/CodeSnippet";
import { snippetsFor } from "@/components/playground/snippets";
import { Sheet, SheetContent, SheetDescription, SheetTitle } from "@/components/ui/sheet";
import type { GenerateStreamRequest } from "@/lib/conversations";

export function ViewCodeSheet({ open, onOpenChange, request }: { open: boolean; onOpenChange: (open: boolean) => void; request: GenerateStreamRequest }) {
  const origin = globalThis.location?.origin ?? "http://localhost:8080";
  return (
    <Sheet open={open} onOpenChange={onOpenChange}>
      <SheetContent className="right-0 left-auto w-[44rem] max-w-[95%] overflow-y-auto border-r-0 border-l p-5">
        <div className="grid gap-1 pr-8">
          <SheetTitle>View code</SheetTitle>
          <SheetDescription>The request the playground sends next (with the message being typed), ready to run elsewhere.</SheetDescription>
        </div>
        <CodeSnippet snippets={snippetsFor(request, origin)} label="Request as code" />
      </SheetContent>
    </Sheet>
  );
}
