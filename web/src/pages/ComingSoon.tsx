import { PageHeader } from "@/components/PageHeader";

/** Training, Playground and Serving arrive with the dashboard's second part. */
export default function ComingSoon({ page }: { page: string }) {
  return (
    <PageHeader
      title={page}
      description={`The ${page.toLowerCase()} page is coming in part 2 of the dashboard. Until then, use the mlx-hub CLI or the HTTP API.`}
    />
  );
}
