/**
 * The playground's conversations, kept in the browser (localStorage): what was
 * asked, what each reference answered with its figures, and the settings the
 * requests were made with. Pure functions (no React) so they are tested alone.
 * A conversation has one or two columns (side by side); each exchange is a prompt
 * and one answer per column, and a column's history is its own answers.
 */
import type { components } from "@/api/schema";

type Schemas = components["schemas"];
export type ChatMessage = Schemas["mlxhub.v1.ChatMessage"];
export type SamplingParams = Schemas["mlxhub.v1.SamplingParams"];
export type GenerateStreamRequest = Schemas["mlxhub.v1.GenerateStreamRequest"];
export type GenerateStreamResponse = Schemas["mlxhub.v1.GenerateStreamResponse"];
export type Usage = Schemas["mlxhub.v1.Usage"];

export const STORAGE_KEY = "mlxhub-playground";

export type Mode = "chat" | "completion";

/** The sampling controls as typed (strings: an empty field means "the server's default"). */
export interface SamplingForm {
  temperature: string;
  topP: string;
  topK: string;
  minP: string;
  repetitionPenalty: string;
  maxTokens: string;
  seed: string;
  /** One stop string per line. */
  stop: string;
}

export const DEFAULT_SAMPLING: SamplingForm = {
  temperature: "0",
  topP: "",
  topK: "",
  minP: "",
  repetitionPenalty: "",
  maxTokens: "256",
  seed: "",
  stop: "",
};

export interface Answer {
  /** The reference asked (`name`, `name@alias`, `name/versions/N`). */
  reference: string;
  text: string;
  /** The exact version that produced the text, as the server reported it. */
  modelVersion?: string;
  usage?: Usage;
  finishReason?: string;
  /** The user stopped it before the server finished. */
  stopped?: boolean;
  error?: string;
}

export interface Exchange {
  prompt: string;
  /** One per column; undefined while a column has not answered. */
  answers: (Answer | undefined)[];
}

export interface Conversation {
  id: string;
  title: string;
  /** One reference per column (two when side by side). */
  references: string[];
  mode: Mode;
  system: string;
  sampling: SamplingForm;
  exchanges: Exchange[];
  updated: string;
}

export function newConversation(references: string[] = [""], now: Date = new Date()): Conversation {
  return {
    id: `c-${now.getTime().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
    title: "New conversation",
    references,
    mode: "chat",
    system: "",
    sampling: { ...DEFAULT_SAMPLING },
    exchanges: [],
    updated: now.toISOString(),
  };
}

/** A title from the first prompt (first line, at most 48 characters). */
export function titleFrom(prompt: string): string {
  const line = prompt.trim().split("\n")[0] ?? "";
  return line.length > 48 ? `${line.slice(0, 47)}…` : line || "New conversation";
}

/** The chat messages a column sends for a new prompt: system, then its own history, then the prompt. */
export function messagesFor(conversation: Conversation, column: number, prompt: string): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (conversation.system.trim()) messages.push({ role: "system", content: conversation.system });
  for (const exchange of conversation.exchanges) {
    const answer = exchange.answers[column];
    if (!answer || answer.error) continue; // a failed turn is not part of the conversation
    messages.push({ role: "user", content: exchange.prompt });
    messages.push({ role: "assistant", content: answer.text });
  }
  messages.push({ role: "user", content: prompt });
  return messages;
}

/** The API's SamplingParams for the form: empty fields left out (the server's defaults). */
export function samplingParams(form: SamplingForm): SamplingParams {
  const params: SamplingParams = {};
  const number = (text: string) => (text.trim() === "" ? undefined : Number(text));
  const temperature = number(form.temperature);
  if (temperature !== undefined) params.temperature = temperature;
  const topP = number(form.topP);
  if (topP !== undefined) params.topP = topP;
  const topK = number(form.topK);
  if (topK !== undefined) params.topK = topK;
  const minP = number(form.minP);
  if (minP !== undefined) params.minP = minP;
  const penalty = number(form.repetitionPenalty);
  if (penalty !== undefined) params.repetitionPenalty = penalty;
  const maxTokens = number(form.maxTokens);
  if (maxTokens !== undefined) params.maxTokens = maxTokens;
  if (form.seed.trim() !== "") {
    params.seed = form.seed.trim();
    params.hasSeed = true;
  }
  const stop = stopStrings(form.stop);
  if (stop.length) params.stop = stop;
  return params;
}

export function stopStrings(text: string): string[] {
  return text.split("\n").filter((s) => s !== "");
}

/** The GenerateStream request a column sends for a prompt. */
export function requestFor(conversation: Conversation, column: number, prompt: string): GenerateStreamRequest {
  const request: GenerateStreamRequest = { model: conversation.references[column] ?? "" };
  if (conversation.mode === "completion") request.prompt = prompt;
  else request.messages = messagesFor(conversation, column, prompt);
  const sampling = samplingParams(conversation.sampling);
  if (Object.keys(sampling).length) request.sampling = sampling;
  return request;
}

/** Fold one stream message into the answer being built. */
export function applyDelta(answer: Answer, message: GenerateStreamResponse): Answer {
  const next: Answer = { ...answer, text: answer.text + (message.text ?? "") };
  if (message.modelVersion) next.modelVersion = message.modelVersion;
  if (message.usage) next.usage = message.usage;
  if (message.finishReason && message.finishReason !== "FINISH_REASON_UNSPECIFIED") {
    next.finishReason = message.finishReason.replace("FINISH_REASON_", "").toLowerCase();
  }
  return next;
}

/** "TTFT 120 ms · 35.2 tok/s · 12 prompt tokens (8 cached) · 16 tokens" */
export function figures(answer: Answer): string[] {
  const u = answer.usage;
  if (!u) return [];
  return [
    `TTFT ${Math.round(u.timeToFirstTokenMs ?? 0)} ms`,
    `${(u.tokensPerSecond ?? 0).toFixed(1)} tok/s`,
    `${u.promptTokens ?? 0} prompt tokens (${u.cachedPromptTokens ?? 0} cached)`,
    `${u.completionTokens ?? 0} tokens`,
  ];
}

export function toMarkdown(conversation: Conversation): string {
  const lines = [`# ${conversation.title}`, ""];
  lines.push(`- Model${conversation.references.length > 1 ? "s" : ""}: ${conversation.references.map((r) => `\`${r}\``).join(" vs ")}`);
  lines.push(`- Mode: ${conversation.mode === "chat" ? "chat" : "raw completion"}`);
  const sampling = samplingParams(conversation.sampling);
  if (Object.keys(sampling).length) lines.push(`- Sampling: \`${JSON.stringify(sampling)}\``);
  lines.push("");
  if (conversation.mode === "chat" && conversation.system.trim()) lines.push("## System", "", conversation.system, "");
  for (const exchange of conversation.exchanges) {
    lines.push(conversation.mode === "chat" ? "## User" : "## Prompt", "", exchange.prompt, "");
    exchange.answers.forEach((answer, column) => {
      if (!answer) return;
      const who = answer.modelVersion || answer.reference || conversation.references[column] || "model";
      lines.push(`## Assistant (${who})`, "", answer.error ? `_Error: ${answer.error}_` : answer.text, "");
      const f = figures(answer);
      if (answer.stopped) f.push("stopped");
      else if (answer.finishReason) f.push(`finish: ${answer.finishReason}`);
      if (f.length) lines.push(`_${f.join(" · ")}_`, "");
    });
  }
  return lines.join("\n");
}

export function toJson(conversation: Conversation): string {
  return `${JSON.stringify(conversation, null, 2)}\n`;
}

export interface Store {
  conversations: Conversation[];
  currentId: string;
}

type Storage = Pick<globalThis.Storage, "getItem" | "setItem">;

function isConversation(value: unknown): value is Conversation {
  const c = value as Conversation;
  return !!c && typeof c.id === "string" && Array.isArray(c.references) && Array.isArray(c.exchanges) && typeof c.sampling === "object";
}

/** The kept conversations (newest first); a fresh one when none are kept or the kept data is unreadable. */
export function loadStore(storage: Storage | undefined): Store {
  try {
    const raw = storage?.getItem(STORAGE_KEY);
    if (raw) {
      const parsed = JSON.parse(raw) as Partial<Store>;
      const conversations = (parsed.conversations ?? []).filter(isConversation).map((c) => ({
        ...c,
        sampling: { ...DEFAULT_SAMPLING, ...c.sampling },
        // An answer that was streaming when the page closed ended there.
        exchanges: c.exchanges.map((e) => ({
          ...e,
          answers: e.answers.map((a) => (a && !a.finishReason && !a.error && !a.stopped ? { ...a, stopped: true } : (a ?? undefined))),
        })),
      }));
      if (conversations.length) {
        const currentId = conversations.some((c) => c.id === parsed.currentId) ? parsed.currentId! : conversations[0]!.id;
        return { conversations, currentId };
      }
    }
  } catch {
    // unreadable: start again
  }
  const fresh = newConversation();
  return { conversations: [fresh], currentId: fresh.id };
}

export function saveStore(storage: Storage | undefined, store: Store): void {
  try {
    storage?.setItem(STORAGE_KEY, JSON.stringify(store));
  } catch {
    // full or refused: the conversation still lives in the page
  }
}

/** Remove a conversation; the current one moves to the next, or a fresh one when none is left. */
export function deleteConversation(store: Store, id: string): Store {
  const conversations = store.conversations.filter((c) => c.id !== id);
  if (!conversations.length) {
    const fresh = newConversation(store.conversations.find((c) => c.id === id)?.references ?? [""]);
    return { conversations: [fresh], currentId: fresh.id };
  }
  const currentId = store.currentId === id ? conversations[0]!.id : store.currentId;
  return { conversations, currentId };
}

/** Replace a conversation (by id) and keep the list newest first. */
export function updateConversation(store: Store, id: string, change: (c: Conversation) => Conversation): Store {
  const conversations = store.conversations.map((c) => (c.id === id ? change(c) : c));
  return { ...store, conversations };
}
