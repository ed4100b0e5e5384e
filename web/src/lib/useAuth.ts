import { useSyncExternalStore } from "react";

import { auth, type AuthState } from "@/lib/auth";

/** The auth store's state, re-rendering on sign-in, sign-out and 401s. */
export function useAuthState(): AuthState {
  return useSyncExternalStore(auth.subscribe, auth.get, auth.get);
}
