/**
 * Copies a value to the clipboard and says so ("Copied") for a moment. Falls back
 * to a hidden textarea and execCommand where the Clipboard API is missing or refused
 * (plain http on another host, an old browser).
 */
import { Check, Copy } from "lucide-react";
import { useEffect, useRef, useState } from "react";

import { Button } from "@/components/ui/button";
import { cn } from "@/lib/utils";

export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && globalThis.isSecureContext !== false) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // refused (no permission, no focus): try the old way below
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  try {
    return document.execCommand("copy");
  } catch {
    return false;
  } finally {
    area.remove();
  }
}

export function CopyButton({
  value,
  label,
  text,
  className,
}: {
  /** What goes to the clipboard. */
  value: string;
  /** The accessible name, e.g. "Copy reference demo@prod". */
  label: string;
  /** Visible text next to the icon; icon only when absent. */
  text?: string;
  className?: string;
}) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);

  const onClick = async () => {
    const ok = await copyText(value);
    setState(ok ? "copied" : "failed");
    clearTimeout(timer.current);
    timer.current = setTimeout(() => setState("idle"), 2000);
  };

  const status = state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : "";
  return (
    <Button
      type="button"
      variant="ghost"
      size={text ? "sm" : "icon"}
      className={cn(text ? "h-7 px-2" : "size-7", className)}
      aria-label={status ? `${label}: ${status}` : label}
      title={label}
      onClick={onClick}
      data-state={state}
    >
      {state === "copied" ? <Check aria-hidden className="text-success" /> : <Copy aria-hidden />}
      {text && <span>{status || text}</span>}
      <span role="status" aria-live="polite" className="sr-only">
        {status}
      </span>
    </Button>
  );
}
