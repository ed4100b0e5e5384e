/**
 * The API key the dashboard sends, kept in localStorage, and whether the hub is
 * asking for one. Any 401 from a call or a stream flips `signInRequired`, which
 * opens the sign-in dialog; signing in or out notifies every subscriber.
 */
export const KEY_STORAGE = "mlxhub-api-key";

export interface AuthState {
  key: string;
  signInRequired: boolean;
  /** Why the dialog is open again (the previous key was refused), if it is. */
  reason: string;
}

type Listener = () => void;

function createAuthStore(storage: Pick<Storage, "getItem" | "setItem" | "removeItem"> | undefined) {
  let state: AuthState = { key: storage?.getItem(KEY_STORAGE) ?? "", signInRequired: false, reason: "" };
  const listeners = new Set<Listener>();
  const set = (next: Partial<AuthState>) => {
    state = { ...state, ...next };
    listeners.forEach((l) => l());
  };
  return {
    get: (): AuthState => state,
    subscribe(listener: Listener): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Headers for a request: `Authorization: Bearer <key>` when a key is kept. */
    headers(): Record<string, string> {
      return state.key ? { Authorization: `Bearer ${state.key}` } : {};
    },
    signIn(key: string) {
      storage?.setItem(KEY_STORAGE, key);
      set({ key, signInRequired: false, reason: "" });
    },
    signOut() {
      storage?.removeItem(KEY_STORAGE);
      set({ key: "", signInRequired: true, reason: "" });
    },
    /** A call sent with `sentKey` was answered 401: ask for a key (again, if one was kept). A call
     * sent before the key changed (one in flight while the user signed in) says nothing of the new key. */
    unauthorized(sentKey: string = state.key) {
      if (state.signInRequired || sentKey !== state.key) return;
      set({ signInRequired: true, reason: state.key ? "The hub did not accept the saved API key." : "" });
    },
  };
}

export type AuthStore = ReturnType<typeof createAuthStore>;
export { createAuthStore };

export const auth = createAuthStore(typeof localStorage === "undefined" ? undefined : localStorage);
