import { Boxes, Database, FlaskConical, Gauge, History, LayoutDashboard, MessageSquare, Server } from "lucide-react";
import { NavLink } from "react-router";

import { cn } from "@/lib/utils";

export const NAV = [
  { to: "/", label: "Overview", icon: LayoutDashboard },
  { to: "/models", label: "Models", icon: Boxes },
  { to: "/datasets", label: "Datasets", icon: Database },
  { to: "/training", label: "Training", icon: FlaskConical },
  { to: "/playground", label: "Playground", icon: MessageSquare },
  { to: "/serving", label: "Serving", icon: Server },
  { to: "/audit", label: "Audit", icon: History },
] as const;

export function Brand() {
  return (
    <span className="flex items-center gap-2 font-semibold">
      <Gauge className="size-5" aria-hidden />
      MLX Hub
    </span>
  );
}

/** The main navigation: in the sidebar on wide screens, in the menu sheet on narrow ones. */
export function NavLinks({ onNavigate }: { onNavigate?: () => void }) {
  return (
    <nav aria-label="Main" className="flex flex-col gap-1 p-2">
      {NAV.map(({ to, label, icon: Icon }) => (
        <NavLink
          key={to}
          to={to}
          end={to === "/"}
          onClick={onNavigate}
          className={({ isActive }) =>
            cn(
              "flex items-center gap-2 rounded-md px-3 py-2 text-sm outline-none hover:bg-accent focus-visible:ring-[3px] focus-visible:ring-ring/50",
              isActive ? "bg-accent font-medium text-accent-foreground" : "text-muted-foreground",
            )
          }
        >
          <Icon className="size-4" aria-hidden />
          {label}
        </NavLink>
      ))}
    </nav>
  );
}

export function Sidebar() {
  return (
    // The outer column carries the background the full height of a long page; the inner one stays in view.
    <div className="hidden w-56 shrink-0 border-r bg-sidebar md:block">
      <aside className="sticky top-0 flex h-screen flex-col">
        <div className="flex h-14 items-center border-b px-4">
          <Brand />
        </div>
        <NavLinks />
      </aside>
    </div>
  );
}
