/**
 * The typed API client (openapi-fetch over the generated schema). Every call
 * carries the signed-in key and reports a 401 to the auth store; `call` turns an
 * error answer into an ApiError so TanStack Query sees it as a failure.
 */
import createClient, { type Middleware } from "openapi-fetch";

import { ApiError, errorFromResponse } from "@/api/errors";
import type { paths } from "@/api/schema";
import { auth } from "@/lib/auth";

const authMiddleware: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(auth.headers())) request.headers.set(name, value);
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401) auth.unauthorized(sentKey(request.headers));
    return response;
  },
};

/** The key a request was sent with ("" for none). */
function sentKey(headers: Headers): string {
  return headers.get("Authorization")?.replace(/^Bearer /, "") ?? "";
}

export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "" });
api.use(authMiddleware);

/** Await an openapi-fetch call: its data, or an ApiError with the API's message and field violations. */
export async function call<T>(request: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await request;
  if (!response.ok || error !== undefined) {
    if (error && typeof error === "object") return Promise.reject(new ApiError(response.status, error as never));
    return Promise.reject(await errorFromResponse(response));
  }
  return data as T;
}

/** A readable message for any error a query or mutation throws. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
