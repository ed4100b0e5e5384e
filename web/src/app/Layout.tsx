/** The shell: sidebar navigation, top bar (health, live state, theme, account, search), and the page. */
import { Suspense, useCallback, useState } from "react";
import { Outlet } from "react-router";

import { Brand, Sidebar } from "@/app/Sidebar";
import { CommandPalette, useCommandPaletteShortcut } from "@/components/shell/CommandPalette";
import { ConnectionIndicator } from "@/components/shell/ConnectionIndicator";
import { HealthPills } from "@/components/shell/HealthPills";
import { MobileNav } from "@/components/shell/MobileNav";
import { PaletteButton } from "@/components/shell/PaletteButton";
import { SignInDialog } from "@/components/shell/SignInDialog";
import { ThemeToggle } from "@/components/shell/ThemeToggle";
import { UserMenu } from "@/components/shell/UserMenu";
import { Skeleton } from "@/components/ui/skeleton";
import { auth } from "@/lib/auth";

export function Layout() {
  const [paletteOpen, setPaletteOpen] = useState(false);
  // Not over the sign-in dialog: nothing can be searched without a key.
  const togglePalette = useCallback(() => setPaletteOpen((open) => !open && !auth.get().signInRequired), []);
  useCommandPaletteShortcut(togglePalette);

  return (
    <div className="flex min-h-screen">
      <a
        href="#main"
        className="sr-only z-50 rounded-md bg-background px-3 py-2 text-sm focus:not-sr-only focus:fixed focus:top-2 focus:left-2 focus:ring-2 focus:ring-ring"
      >
        Skip to content
      </a>
      <Sidebar />
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="sticky top-0 z-30 flex h-14 items-center gap-2 border-b bg-background/95 px-3 backdrop-blur sm:gap-3 sm:px-4">
          <MobileNav />
          <span className="md:hidden max-sm:hidden">
            <Brand />
          </span>
          <PaletteButton onOpen={() => setPaletteOpen(true)} />
          <div className="ml-auto flex min-w-0 items-center gap-2 sm:gap-3">
            <HealthPills />
            <ConnectionIndicator />
            <ThemeToggle />
            <UserMenu />
          </div>
        </header>
        <main id="main" tabIndex={-1} className="flex-1 p-4 outline-none sm:p-6">
          <Suspense fallback={<Skeleton className="h-40 w-full" />}>
            <Outlet />
          </Suspense>
        </main>
      </div>
      <CommandPalette open={paletteOpen} onOpenChange={setPaletteOpen} />
      <SignInDialog />
    </div>
  );
}
