import { useQuery } from "@tanstack/react-query";

import { api, call } from "@/api/client";
import { useAuthState } from "@/lib/useAuth";

/** Who the hub takes the caller to be, and whether it asks for keys at all (asked again per key). */
export function useWhoAmI() {
  const { key } = useAuthState();
  return useQuery({
    queryKey: ["whoami", key],
    queryFn: () => call(api.GET("/v1/whoami")),
    staleTime: 5 * 60_000,
    retry: false,
  });
}
