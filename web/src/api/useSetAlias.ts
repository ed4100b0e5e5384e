/** Point one of a model's aliases at a version; the model's queries (and the models list) are read again after. */
import { useMutation, useQueryClient } from "@tanstack/react-query";

import { api, call } from "@/api/client";

export function useSetAlias(name: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ alias, version }: { alias: string; version: string }) =>
      call(api.PUT("/v1/models/{name}/aliases/{alias}", { params: { path: { name, alias } }, body: { version } })),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ["model", name] });
      await queryClient.invalidateQueries({ queryKey: ["models"] });
    },
  });
}
