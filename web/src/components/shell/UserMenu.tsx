/** The signed-in principal and "Sign out"; nothing when the hub asks for no key. */
import { useQueryClient } from "@tanstack/react-query";
import { LogOut, UserRound } from "lucide-react";

import { useWhoAmI } from "@/components/shell/useWhoAmI";
import { Button } from "@/components/ui/button";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuLabel,
  DropdownMenuSeparator,
  DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import { auth } from "@/lib/auth";

export function UserMenu() {
  const whoami = useWhoAmI();
  const queryClient = useQueryClient();
  if (!whoami.data?.authEnabled) return null;
  const principal = whoami.data.principal || "unknown";
  const signOut = () => {
    auth.signOut();
    // Nothing fetched with the old key may stay on screen or in the cache; signing in refetches it all.
    void queryClient.resetQueries();
  };
  return (
    <DropdownMenu>
      <DropdownMenuTrigger asChild>
        <Button variant="ghost" size="sm" aria-label={`Account: ${principal}`} data-testid="user-menu">
          <UserRound aria-hidden />
          <span className="max-w-32 truncate">{principal}</span>
        </Button>
      </DropdownMenuTrigger>
      <DropdownMenuContent align="end" className="min-w-48">
        <DropdownMenuLabel className="font-normal text-muted-foreground">
          Signed in as <span className="font-medium text-foreground">{principal}</span>
        </DropdownMenuLabel>
        <DropdownMenuSeparator />
        <DropdownMenuItem onSelect={signOut}>
          <LogOut aria-hidden />
          Sign out
        </DropdownMenuItem>
      </DropdownMenuContent>
    </DropdownMenu>
  );
}
