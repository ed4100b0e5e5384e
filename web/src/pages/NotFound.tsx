import { Link } from "react-router";

import { PageHeader } from "@/components/PageHeader";

export default function NotFound() {
  return (
    <div className="flex flex-col gap-4">
      <PageHeader title="Page not found" description="No page of the dashboard has this address." />
      <Link className="text-sm underline" to="/">Go to the overview</Link>
    </div>
  );
}
