/** The top bar's way into the command palette, showing its shortcut. */
import { Search } from "lucide-react";

import { Button } from "@/components/ui/button";

const isMac = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);

export const SHORTCUT_LABEL = isMac ? "⌘K" : "Ctrl K";

export function PaletteButton({ onOpen }: { onOpen: () => void }) {
  return (
    <Button
      variant="outline"
      size="sm"
      onClick={onOpen}
      aria-keyshortcuts={isMac ? "Meta+K" : "Control+K"}
      className="w-9 justify-start px-0 text-muted-foreground sm:w-56 sm:px-3 max-sm:justify-center"
      data-testid="open-palette"
    >
      <Search aria-hidden />
      <span className="max-sm:sr-only">Search…</span>
      <kbd className="ml-auto hidden rounded border bg-muted px-1.5 font-mono text-[0.7rem] text-muted-foreground sm:inline">
        {SHORTCUT_LABEL}
      </kbd>
    </Button>
  );
}
