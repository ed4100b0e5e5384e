/**
 * Focus back where it was when a dialog or sheet closes. Radix gives the focus back
 * to a dialog's Trigger; many of ours open from a button elsewhere (a table row, the
 * playground's toolbar, a keyboard shortcut), and without this the focus would fall
 * to the page's body and a keyboard user would start again from the top.
 */
import { useRef } from "react";

type AutoFocusHandler = (event: Event) => void;

export function useReturnFocus(onOpenAutoFocus?: AutoFocusHandler, onCloseAutoFocus?: AutoFocusHandler) {
  const opener = useRef<HTMLElement | null>(null);
  return {
    onOpenAutoFocus: (event: Event) => {
      // Runs before the focus moves into the content: what has it now opened the dialog.
      opener.current = document.activeElement instanceof HTMLElement && document.activeElement !== document.body ? document.activeElement : null;
      onOpenAutoFocus?.(event);
    },
    onCloseAutoFocus: (event: Event) => {
      onCloseAutoFocus?.(event);
      const target = opener.current;
      opener.current = null;
      if (event.defaultPrevented || !target?.isConnected) return;
      event.preventDefault();
      target.focus();
    },
  };
}
