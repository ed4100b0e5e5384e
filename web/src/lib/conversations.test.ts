import { describe, expect, it } from "vitest";

import {
  applyDelta,
  type Conversation,
  deleteConversation,
  loadStore,
  messagesFor,
  newConversation,
  requestFor,
  samplingParams,
  saveStore,
  STORAGE_KEY,
  titleFrom,
  toMarkdown,
} from "@/lib/conversations";

function memory(): Storage {
  const data = new Map<string, string>();
  return {
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => void data.set(k, v),
    removeItem: (k: string) => void data.delete(k),
    clear: () => data.clear(),
    key: () => null,
    length: 0,
  };
}

function chat(): Conversation {
  const c = newConversation(["smollm2@default", "smollm2/versions/2"], new Date("2026-12-01T00:00:00Z"));
  c.system = "Be brief.";
  c.exchanges = [
    {
      prompt: "Hi",
      answers: [
        { reference: "smollm2@default", text: "Hello!", modelVersion: "smollm2/versions/1", finishReason: "stop" },
        { reference: "smollm2/versions/2", text: "", error: "boom" },
      ],
    },
  ];
  return c;
}

describe("conversations", () => {
  it("builds each column's history from its own answers, skipping failed turns", () => {
    const c = chat();
    expect(messagesFor(c, 0, "And?")).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello!" },
      { role: "user", content: "And?" },
    ]);
    expect(messagesFor(c, 1, "And?")).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "And?" },
    ]);
  });

  it("sends a raw prompt in completion mode and leaves empty sampling fields to the server", () => {
    const c = chat();
    c.mode = "completion";
    c.sampling = { ...c.sampling, temperature: "", maxTokens: "16", seed: "7", stop: "\n\nEND\n" };
    expect(requestFor(c, 1, "Once upon")).toEqual({
      model: "smollm2/versions/2",
      prompt: "Once upon",
      sampling: { maxTokens: 16, seed: "7", hasSeed: true, stop: ["END"] },
    });
    expect(samplingParams({ ...c.sampling, maxTokens: "", seed: "", stop: "" })).toEqual({});
  });

  it("folds stream messages into an answer", () => {
    let a = { reference: "m", text: "" };
    a = applyDelta(a, { text: "Pa" });
    a = applyDelta(a, { text: "ris", modelVersion: "m/versions/3" });
    a = applyDelta(a, { finishReason: "FINISH_REASON_LENGTH", usage: { promptTokens: 5, tokensPerSecond: 10 } });
    expect(a).toMatchObject({ text: "Paris", modelVersion: "m/versions/3", finishReason: "length", usage: { promptTokens: 5 } });
  });

  it("exports Markdown naming the exact version of each answer", () => {
    const md = toMarkdown({ ...chat(), title: titleFrom("Hi there\nsecond line") });
    expect(md).toContain("# Hi there");
    expect(md).toContain("## Assistant (smollm2/versions/1)");
    expect(md).toContain("_Error: boom_");
  });

  it("keeps conversations in storage and survives unreadable data", () => {
    const storage = memory();
    const c = chat();
    saveStore(storage, { conversations: [c], currentId: c.id });
    expect(loadStore(storage)).toEqual({ conversations: [c], currentId: c.id });
    // An answer still streaming when the page went away is kept as stopped.
    const cut = chat();
    cut.exchanges[0]!.answers[0] = { reference: "smollm2@default", text: "The cap" };
    saveStore(storage, { conversations: [cut], currentId: cut.id });
    expect(loadStore(storage).conversations[0]!.exchanges[0]!.answers[0]).toMatchObject({ text: "The cap", stopped: true });
    storage.setItem(STORAGE_KEY, "{not json");
    expect(loadStore(storage).conversations).toHaveLength(1);
    const after = deleteConversation({ conversations: [c], currentId: c.id }, c.id);
    expect(after.conversations).toHaveLength(1);
    expect(after.currentId).not.toBe(c.id);
    expect(after.conversations[0]!.references).toEqual(c.references);
  });
});
