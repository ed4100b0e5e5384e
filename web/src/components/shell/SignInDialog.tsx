/**
 * Asks for an API key whenever the hub answered 401 (the auth store's
 * `signInRequired`). It cannot be dismissed without a key: every page behind it
 * needs one. A key is tried on /v1/whoami before it is kept, so a wrong one is
 * refused beside the field instead of failing every page.
 */
import { useQueryClient } from "@tanstack/react-query";
import { KeyRound, LoaderCircle } from "lucide-react";
import { type FormEvent, useId, useState } from "react";

import { errorFromResponse } from "@/api/errors";
import { errorMessage } from "@/api/client";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { auth } from "@/lib/auth";
import { useAuthState } from "@/lib/useAuth";

export const WRONG_KEY = "The hub did not accept this key";

/** Whether the hub takes `key`: undefined if so, else what to say beside the field. */
export async function checkKey(key: string, fetchImpl: typeof fetch = fetch): Promise<string | undefined> {
  const response = await fetchImpl("/v1/whoami", {
    headers: { Accept: "application/json", Authorization: `Bearer ${key}` },
  });
  if (response.ok) return undefined;
  if (response.status === 401 || response.status === 403) return WRONG_KEY;
  return (await errorFromResponse(response)).message;
}

export function SignInDialog() {
  const { signInRequired, reason } = useAuthState();
  return (
    <Dialog open={signInRequired}>
      <DialogContent
        showClose={false}
        onEscapeKeyDown={(e) => e.preventDefault()}
        onPointerDownOutside={(e) => e.preventDefault()}
        onInteractOutside={(e) => e.preventDefault()}
      >
        {/* Mounted afresh each time the dialog opens, so no old key or error lingers. */}
        {signInRequired && <SignInForm reason={reason} />}
      </DialogContent>
    </Dialog>
  );
}

function SignInForm({ reason }: { reason: string }) {
  const queryClient = useQueryClient();
  const id = useId();
  const [key, setKey] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError("Enter an API key");
      return;
    }
    setBusy(true);
    setError("");
    try {
      const problem = await checkKey(trimmed);
      if (problem) {
        setError(problem);
        return;
      }
      auth.signIn(trimmed);
      // Everything cached was fetched without (or with a refused) key: fetch it all again.
      await queryClient.resetQueries();
    } catch (e) {
      setError(`Could not reach the hub: ${errorMessage(e)}`);
    } finally {
      setBusy(false);
    }
  };

  const errorId = `${id}-error`;
  return (
    <form onSubmit={submit} className="grid gap-4" noValidate>
      <DialogHeader>
        <DialogTitle className="flex items-center gap-2">
          <KeyRound className="size-5" aria-hidden />
          Sign in to MLX Hub
        </DialogTitle>
        <DialogDescription>
          This hub asks for an API key (one of MLXHUB_API_KEYS). It is kept in this browser until you sign out.
        </DialogDescription>
      </DialogHeader>
      {reason && (
        <p role="alert" className="rounded-md border border-destructive/40 px-3 py-2 text-sm text-destructive">
          {reason}
        </p>
      )}
      <div className="grid gap-2">
        <Label htmlFor={`${id}-key`}>API key</Label>
        <Input
          id={`${id}-key`}
          type="password"
          autoComplete="current-password"
          autoFocus
          value={key}
          onChange={(e) => {
            setKey(e.target.value);
            setError("");
          }}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errorId : undefined}
        />
        {error && (
          <p id={errorId} role="alert" className="text-sm text-destructive">
            {error}
          </p>
        )}
      </div>
      <DialogFooter>
        <Button type="submit" disabled={busy}>
          {busy && <LoaderCircle className="animate-spin" aria-hidden />}
          Sign in
        </Button>
      </DialogFooter>
    </form>
  );
}
