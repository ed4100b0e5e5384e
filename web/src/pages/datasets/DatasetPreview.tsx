/**
 * The first records of a dataset as people read them: chat turns as labelled
 * bubbles, completions as prompt and completion, text as text. Lines the
 * registry could not parse are shown as such, never hidden.
 */
import { useState } from "react";

import { Button } from "@/components/ui/button";
import { cn } from "@/lib/utils";

type Record_ = Record<string, unknown>;

const COLLAPSE_CHARS = 600;
const COLLAPSE_LINES = 10;

/** Text of a message's content: a string, or the text parts of a list of parts. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => {
        if (typeof part === "string") return part;
        if (part && typeof part === "object" && typeof (part as Record_).text === "string") return (part as Record_).text as string;
        return JSON.stringify(part);
      })
      .join("\n");
  }
  if (content === undefined || content === null) return "";
  return JSON.stringify(content, null, 2);
}

/** Long text shows its start and a "Show more" button. */
export function Collapsible({ text, className }: { text: string; className?: string }) {
  const [open, setOpen] = useState(false);
  const lines = text.split("\n");
  const long = text.length > COLLAPSE_CHARS || lines.length > COLLAPSE_LINES;
  const shown = !long || open ? text : lines.slice(0, COLLAPSE_LINES).join("\n").slice(0, COLLAPSE_CHARS) + "…";
  return (
    <div className={className}>
      <div className="break-words whitespace-pre-wrap">{shown || <span className="text-muted-foreground italic">(empty)</span>}</div>
      {long && (
        <Button variant="link" size="sm" className="h-auto px-0 py-1" aria-expanded={open} onClick={() => setOpen(!open)}>
          {open ? "Show less" : `Show more (${text.length.toLocaleString("en-US")} characters)`}
        </Button>
      )}
    </div>
  );
}

const ROLE_STYLES: Record<string, { bubble: string; label: string }> = {
  system: { bubble: "border-dashed bg-muted/60", label: "System" },
  user: { bubble: "bg-secondary", label: "User" },
  assistant: { bubble: "border-l-4 border-l-chart-1 bg-card", label: "Assistant" },
  tool: { bubble: "bg-muted/40 font-mono text-xs", label: "Tool" },
};

function ChatRecord({ messages }: { messages: unknown[] }) {
  return (
    <div className="grid gap-2">
      {messages.map((message, i) => {
        const m = (message && typeof message === "object" ? message : {}) as Record_;
        const role = typeof m.role === "string" ? m.role : "unknown";
        const style = ROLE_STYLES[role] ?? { bubble: "bg-muted/40", label: role };
        return (
          <div key={i} className={cn("grid gap-1", role === "user" ? "justify-items-end" : "justify-items-start")} data-role={role}>
            <span className="text-xs font-medium text-muted-foreground">{style.label}</span>
            <Collapsible text={contentText(m.content)} className={cn("max-w-[85%] rounded-lg border px-3 py-2 text-sm", style.bubble)} />
          </div>
        );
      })}
    </div>
  );
}

function Labelled({ label, text, className }: { label: string; text: unknown; className?: string }) {
  return (
    <div className="grid gap-1">
      <span className="text-xs font-medium text-muted-foreground">{label}</span>
      <Collapsible text={contentText(text)} className={cn("rounded-lg border px-3 py-2 text-sm", className)} />
    </div>
  );
}

export function PreviewRecord({ record }: { record: Record_ }) {
  if (typeof record._unparsed === "string") {
    return (
      <div className="grid gap-1">
        <span className="text-xs font-medium text-destructive">Not valid JSON — shown as stored</span>
        <Collapsible text={record._unparsed} className="rounded-lg border border-destructive/40 px-3 py-2 font-mono text-xs" />
      </div>
    );
  }
  if (Array.isArray(record.messages)) return <ChatRecord messages={record.messages} />;
  if ("prompt" in record || "completion" in record) {
    return (
      <div className="grid gap-2">
        <Labelled label="Prompt" text={record.prompt} className="bg-secondary" />
        <Labelled label="Completion" text={record.completion} className="border-l-4 border-l-chart-1 bg-card" />
      </div>
    );
  }
  if ("text" in record) return <Labelled label="Text" text={record.text} />;
  return <Labelled label="Record" text={JSON.stringify(record, null, 2)} className="font-mono text-xs" />;
}
