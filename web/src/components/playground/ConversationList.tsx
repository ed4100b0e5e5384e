/** The conversations kept in this browser: switch, start a new one, delete. */
import { MessageSquarePlus, Trash2 } from "lucide-react";

import { Button } from "@/components/ui/button";
import type { Conversation } from "@/lib/conversations";
import { cn } from "@/lib/utils";

export function ConversationList({
  conversations,
  currentId,
  onSelect,
  onNew,
  onDelete,
}: {
  conversations: Conversation[];
  currentId: string;
  onSelect: (id: string) => void;
  onNew: () => void;
  onDelete: (id: string) => void;
}) {
  return (
    <nav aria-label="Conversations" className="grid content-start gap-2">
      <Button variant="outline" size="sm" onClick={onNew}>
        <MessageSquarePlus aria-hidden /> New conversation
      </Button>
      <ul className="grid gap-1">
        {conversations.map((c) => {
          const current = c.id === currentId;
          return (
            <li key={c.id} className={cn("group flex items-center gap-1 rounded-md", current && "bg-accent")}>
              <button
                type="button"
                onClick={() => onSelect(c.id)}
                aria-current={current ? "true" : undefined}
                className="grid min-w-0 flex-1 rounded-md px-2 py-1.5 text-left text-sm outline-none hover:bg-accent focus-visible:ring-[3px] focus-visible:ring-ring/50"
              >
                <span className="truncate">{c.title}</span>
                <span className="truncate font-mono text-[11px] text-muted-foreground">{c.references.filter(Boolean).join(" vs ") || "no model"}</span>
              </button>
              <Button variant="ghost" size="icon" className="size-7 shrink-0" aria-label={`Delete conversation ${c.title}`} title="Delete" onClick={() => onDelete(c.id)}>
                <Trash2 aria-hidden />
              </Button>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
