/**
 * Light, dark or the system's choice, kept in localStorage under the key that
 * index.html reads before the first paint (so a dark page never flashes light).
 * With "system" the page follows the operating system's setting as it changes.
 */
import { useSyncExternalStore } from "react";

export const THEME_STORAGE = "mlxhub-theme";
export const THEMES = ["light", "dark", "system"] as const;
export type Theme = (typeof THEMES)[number];

const DARK_QUERY = "(prefers-color-scheme: dark)";
const listeners = new Set<() => void>();

function stored(): Theme {
  try {
    const value = globalThis.localStorage?.getItem(THEME_STORAGE);
    return THEMES.includes(value as Theme) ? (value as Theme) : "system";
  } catch {
    return "system";
  }
}

let current: Theme = stored();

function systemDark(): boolean {
  return globalThis.matchMedia?.(DARK_QUERY).matches ?? false;
}

/** Whether `theme` shows dark now. */
export function isDark(theme: Theme): boolean {
  return theme === "dark" || (theme === "system" && systemDark());
}

function apply() {
  globalThis.document?.documentElement.classList.toggle("dark", isDark(current));
  listeners.forEach((l) => l());
}

export function getTheme(): Theme {
  return current;
}

export function setTheme(theme: Theme) {
  current = theme;
  try {
    globalThis.localStorage?.setItem(THEME_STORAGE, theme);
  } catch {
    // Storage refused (private mode): the choice lasts for this page only.
  }
  apply();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

// Follow the system's setting while the choice is "system", and a choice made in another tab.
if (typeof window !== "undefined") {
  window.matchMedia?.(DARK_QUERY).addEventListener("change", () => {
    if (current === "system") apply();
  });
  window.addEventListener("storage", (event) => {
    if (event.key !== THEME_STORAGE) return;
    current = stored();
    apply();
  });
}

/** The chosen theme, re-rendering when it changes. */
export function useTheme(): [Theme, (theme: Theme) => void] {
  return [useSyncExternalStore(subscribe, getTheme, getTheme), setTheme];
}
