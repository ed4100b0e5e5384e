/** The shell: sidebar navigation, top bar, and the page. */
import { Suspense } from "react";
import { Outlet } from "react-router";

import { Sidebar } from "@/app/Sidebar";
import { Skeleton } from "@/components/ui/skeleton";

export function Layout() {
  return (
    <div className="flex min-h-screen">
      <Sidebar />
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="sticky top-0 z-30 flex h-14 items-center gap-3 border-b bg-background/95 px-4 backdrop-blur" />
        <main className="flex-1 p-6">
          <Suspense fallback={<Skeleton className="h-40 w-full" />}>
            <Outlet />
          </Suspense>
        </main>
      </div>
    </div>
  );
}
