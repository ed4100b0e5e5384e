import { QueryClient } from "@tanstack/react-query";

import { ApiError } from "@/api/errors";

/** Server state cache: errors a retry cannot fix (4xx) are not retried. */
export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 5_000,
      retry: (failures, error) =>
        failures < 2 && !(error instanceof ApiError && error.httpStatus >= 400 && error.httpStatus < 500),
    },
  },
});
