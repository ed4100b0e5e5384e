/** On narrow screens the sidebar folds into this menu button and a sheet. */
import { Menu } from "lucide-react";
import { useState } from "react";

import { Brand, NavLinks } from "@/app/Sidebar";
import { Button } from "@/components/ui/button";
import { Sheet, SheetContent, SheetDescription, SheetTitle, SheetTrigger } from "@/components/ui/sheet";

export function MobileNav() {
  const [open, setOpen] = useState(false);
  return (
    <Sheet open={open} onOpenChange={setOpen}>
      <SheetTrigger asChild>
        <Button variant="ghost" size="icon" className="md:hidden" aria-label="Open navigation">
          <Menu aria-hidden />
        </Button>
      </SheetTrigger>
      <SheetContent>
        <div className="flex h-14 items-center border-b px-4">
          <SheetTitle asChild>
            <h2>
              <Brand />
            </h2>
          </SheetTitle>
        </div>
        <SheetDescription className="sr-only">Pages of the hub</SheetDescription>
        <NavLinks onNavigate={() => setOpen(false)} />
      </SheetContent>
    </Sheet>
  );
}
