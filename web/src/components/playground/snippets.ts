/** The current request as curl, Python (the `openai` client) and `mlx-hub` commands. */
import type { Snippet } from "@/components/CodeSnippet";
import type { GenerateStreamRequest } from "@/lib/conversations";

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function curlSnippet(request: GenerateStreamRequest, origin: string): string {
  return [
    `curl -N -X POST ${origin}/v1/generate:stream \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -H "Authorization: Bearer $MLXHUB_API_KEY" \\`,
    `  -d ${shellQuote(JSON.stringify(request, null, 2))}`,
  ].join("\n");
}

function py(value: unknown): string {
  if (value === undefined || value === null) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "string" || typeof value === "number") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(py).join(", ")}]`;
  return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)}: ${py(v)}`).join(", ")}}`;
}

export function pythonSnippet(request: GenerateStreamRequest, origin: string): string {
  const s = request.sampling ?? {};
  const args: string[] = [`    model=${py(request.model)},`];
  const completion = request.prompt !== undefined;
  if (completion) args.push(`    prompt=${py(request.prompt)},`);
  else {
    args.push("    messages=[");
    for (const m of request.messages ?? []) args.push(`        {"role": ${py(m.role)}, "content": ${py(m.content ?? "")}},`);
    args.push("    ],");
  }
  if (s.temperature !== undefined) args.push(`    temperature=${s.temperature},`);
  if (s.topP !== undefined) args.push(`    top_p=${s.topP},`);
  if (s.maxTokens !== undefined) args.push(`    max_tokens=${s.maxTokens},`);
  if (s.hasSeed && s.seed !== undefined) args.push(`    seed=${s.seed},`);
  if (s.stop?.length) args.push(`    stop=${py(s.stop)},`);
  const extra: Record<string, number> = {};
  if (s.topK !== undefined) extra.top_k = s.topK;
  if (s.minP !== undefined) extra.min_p = s.minP;
  if (s.repetitionPenalty !== undefined) extra.repetition_penalty = s.repetitionPenalty;
  if (Object.keys(extra).length) args.push(`    extra_body=${py(extra)},`);
  args.push("    stream=True,");
  const create = completion ? "client.completions.create" : "client.chat.completions.create";
  const print = completion
    ? `    print(chunk.choices[0].text, end="", flush=True)`
    : `    print(chunk.choices[0].delta.content or "", end="", flush=True)`;
  return [
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${py(`${origin}/openai/v1`)}, api_key=os.environ.get("MLXHUB_API_KEY", "none"))`,
    `stream = ${create}(`,
    ...args,
    ")",
    "for chunk in stream:",
    print,
    "print()",
  ].join("\n");
}

/**
 * `mlx-hub generate` takes one prompt with --max-tokens, --temperature, --seed and --raw;
 * a conversation with history or a system prompt becomes `mlx-hub chat`, and the
 * sampling fields the CLI has no flag for are named in a comment.
 */
export function cliSnippet(request: GenerateStreamRequest): string {
  const s = request.sampling ?? {};
  const flags: string[] = [];
  if (s.maxTokens !== undefined) flags.push(`--max-tokens ${s.maxTokens}`);
  if (s.temperature !== undefined) flags.push(`--temperature ${s.temperature}`);
  const unsupported = ["topP", "topK", "minP", "repetitionPenalty", "stop"].filter((k) => (s as Record<string, unknown>)[k] !== undefined);
  const lines: string[] = [];
  if (request.prompt !== undefined) {
    if (s.hasSeed && s.seed !== undefined) flags.push(`--seed ${s.seed}`);
    lines.push(["mlx-hub generate", shellQuote(request.model), shellQuote(request.prompt), "--raw", ...flags].join(" "));
  } else {
    const messages = request.messages ?? [];
    const system = messages.find((m) => m.role === "system");
    const history = messages.filter((m) => m.role !== "system");
    const last = history[history.length - 1];
    if (history.length <= 1 && !system) {
      if (s.hasSeed && s.seed !== undefined) flags.push(`--seed ${s.seed}`);
      lines.push(["mlx-hub generate", shellQuote(request.model), shellQuote(last?.content ?? ""), ...flags].join(" "));
    } else {
      lines.push("# a conversation: mlx-hub chat keeps the history as you type each turn");
      const chatFlags = flags.filter((f) => !f.startsWith("--seed"));
      if (system) chatFlags.unshift(`--system ${shellQuote(system.content ?? "")}`);
      lines.push(["mlx-hub chat", shellQuote(request.model), ...chatFlags].join(" "));
      if (s.hasSeed) unsupported.push("seed");
    }
  }
  if (unsupported.length) lines.unshift(`# mlx-hub has no flags for ${unsupported.join(", ")}: use the curl or Python request for those`);
  return lines.join("\n");
}

export function snippetsFor(request: GenerateStreamRequest, origin: string): Snippet[] {
  return [
    { id: "curl", label: "curl", code: curlSnippet(request, origin) },
    { id: "python", label: "Python", code: pythonSnippet(request, origin) },
    { id: "cli", label: "mlx-hub", code: cliSnippet(request) },
  ];
}
