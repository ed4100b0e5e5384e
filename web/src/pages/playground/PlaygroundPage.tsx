/**
 * The playground: talk to any model, alias or version through GenerateStream,
 * alone or side by side with a second reference, with the answers' figures, the
 * request as code, and the conversations kept in this browser.
 */
import { Code2, FileJson, FileText, Send, Square } from "lucide-react";
import { type KeyboardEvent, useCallback, useEffect, useId, useMemo, useRef, useState } from "react";
import { useSearchParams } from "react-router";

import { errorMessage } from "@/api/client";
import { CopyButton } from "@/components/CopyButton";
import { PageHeader } from "@/components/PageHeader";
import { AnswerView } from "@/components/playground/AnswerView";
import { ConversationList } from "@/components/playground/ConversationList";
import { generateStream, isAbort } from "@/components/playground/generate";
import { checkSampling } from "@/components/playground/limits";
import { PromoteDialog } from "@/components/playground/PromoteDialog";
import { ReferencePicker, splitReference } from "@/components/playground/ReferencePicker";
import { SamplingControls } from "@/components/playground/SamplingControls";
import { ViewCodeSheet } from "@/components/playground/ViewCodeSheet";
import { Button } from "@/components/ui/button";
import { Label } from "@/components/ui/label";
import { NativeSelect } from "@/components/ui/native-select";
import { Switch } from "@/components/ui/switch";
import { Textarea } from "@/components/ui/textarea";
import { downloadText } from "@/lib/download";
import {
  type Answer,
  applyDelta,
  type Conversation,
  deleteConversation,
  loadStore,
  type Mode,
  newConversation,
  requestFor,
  saveStore,
  type Store,
  titleFrom,
  toJson,
  toMarkdown,
  updateConversation,
} from "@/lib/conversations";

const storage = typeof localStorage === "undefined" ? undefined : localStorage;

function slug(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "conversation";
}

/** Set one column's answer of one exchange. */
function setAnswer(c: Conversation, exchange: number, column: number, change: (a: Answer) => Answer): Conversation {
  const exchanges = c.exchanges.map((e, i) => {
    if (i !== exchange) return e;
    const answers = [...e.answers];
    const current = answers[column];
    if (current) answers[column] = change(current);
    return { ...e, answers };
  });
  return { ...c, exchanges };
}

export default function PlaygroundPage() {
  const id = useId();
  const [params, setParams] = useSearchParams();
  const [store, setStore] = useState<Store>(() => {
    const loaded = loadStore(storage);
    const wanted = params.get("model");
    if (!wanted) return loaded;
    const current = loaded.conversations.find((c) => c.id === loaded.currentId);
    if (current?.references[0] === wanted) return loaded;
    if (current && current.exchanges.length === 0) {
      return updateConversation(loaded, current.id, (c) => ({ ...c, references: [wanted, ...c.references.slice(1)] }));
    }
    const fresh = newConversation([wanted]);
    return { conversations: [fresh, ...loaded.conversations], currentId: fresh.id };
  });
  const conversation = store.conversations.find((c) => c.id === store.currentId) ?? store.conversations[0]!;
  const [draft, setDraft] = useState("");
  /** Columns streaming now, by conversation id. */
  const [running, setRunning] = useState<{ conversationId: string; columns: number[] } | undefined>(undefined);
  const controllers = useRef<AbortController[]>([]);
  const [announcement, setAnnouncement] = useState("");
  const [codeOpen, setCodeOpen] = useState(false);
  const [promoting, setPromoting] = useState<string | undefined>(undefined);
  const [formError, setFormError] = useState("");
  const prompt = useRef<HTMLTextAreaElement>(null);
  const transcriptEnd = useRef<HTMLDivElement>(null);

  // ?model= picks the model once; dropping it keeps a reload on the same conversation.
  useEffect(() => {
    if (params.has("model")) {
      const next = new URLSearchParams(params);
      next.delete("model");
      setParams(next, { replace: true });
    }
  }, [params, setParams]);
  // Keep the conversations in the browser (not on every token: a moment after the last change,
  // and when the page goes away).
  const latest = useRef(store);
  latest.current = store;
  useEffect(() => {
    const timer = setTimeout(() => saveStore(storage, store), 400);
    return () => clearTimeout(timer);
  }, [store]);
  useEffect(() => {
    const flush = () => saveStore(storage, latest.current);
    window.addEventListener("pagehide", flush);
    return () => {
      window.removeEventListener("pagehide", flush);
      flush();
    };
  }, []);
  // Abort whatever still streams when the page goes away.
  useEffect(() => () => controllers.current.forEach((c) => c.abort()), []);

  const update = useCallback((change: (c: Conversation) => Conversation) => {
    setStore((s) => updateConversation(s, s.currentId, (c) => ({ ...change(c), updated: new Date().toISOString() })));
  }, []);

  const problems = checkSampling(conversation.sampling);
  const streaming = running !== undefined;
  const sideBySide = conversation.references.length > 1;

  const send = async () => {
    const text = draft;
    if (streaming) return;
    if (!text.trim()) {
      setFormError(conversation.mode === "chat" ? "Type a message first." : "Type a prompt first.");
      return;
    }
    if (conversation.references.some((r) => !r.trim())) {
      setFormError(sideBySide ? "Pick both models first." : "Pick a model first.");
      return;
    }
    if (Object.keys(problems).length) {
      setFormError("Fix the sampling settings first.");
      return;
    }
    setFormError("");
    const base = conversation;
    const conversationId = base.id;
    const exchange = base.exchanges.length;
    const requests = base.references.map((_, column) => requestFor(base, column, text));
    setStore((s) =>
      updateConversation(s, conversationId, (c) => ({
        ...c,
        title: c.exchanges.length === 0 ? titleFrom(text) : c.title,
        updated: new Date().toISOString(),
        exchanges: [...c.exchanges, { prompt: text, answers: c.references.map((reference) => ({ reference, text: "" })) }],
      })),
    );
    setDraft("");
    const live = requests.map((_, i) => i);
    setRunning({ conversationId, columns: live });
    setAnnouncement(`Generating with ${base.references.join(" and ")}…`);
    controllers.current = requests.map(() => new AbortController());
    const results = await Promise.all(
      requests.map(async (request, column) => {
        const change = (f: (a: Answer) => Answer) => setStore((s) => updateConversation(s, conversationId, (c) => setAnswer(c, exchange, column, f)));
        try {
          await generateStream(request, (message) => change((a) => applyDelta(a, message)), controllers.current[column]!.signal);
          return "done";
        } catch (error) {
          if (isAbort(error)) {
            change((a) => ({ ...a, stopped: true }));
            return "stopped";
          }
          change((a) => ({ ...a, error: errorMessage(error) }));
          return `error: ${errorMessage(error)}`;
        } finally {
          setRunning((r) => (r ? { ...r, columns: r.columns.filter((c) => c !== column) } : r));
        }
      }),
    );
    setRunning(undefined);
    controllers.current = [];
    if (results.every((r) => r === "stopped")) setAnnouncement("Stopped.");
    else if (results.some((r) => r.startsWith("error"))) setAnnouncement(`The generation failed: ${results.find((r) => r.startsWith("error"))?.slice(7)}`);
    else setAnnouncement(results.length > 1 ? "Both answers are complete." : "The answer is complete.");
  };

  const stop = () => {
    controllers.current.forEach((c) => c.abort());
    prompt.current?.focus();
  };

  const onPromptKey = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void send();
    } else if (event.key === "Escape" && streaming) {
      event.preventDefault();
      stop();
    }
  };

  // Escape stops a generation from anywhere in the chat, not only the message box.
  const onChatKey = (event: KeyboardEvent<HTMLElement>) => {
    if (event.key === "Escape" && streaming && !event.defaultPrevented) {
      event.preventDefault();
      stop();
    }
  };

  useEffect(() => {
    transcriptEnd.current?.scrollIntoView({ block: "nearest" });
  }, [conversation.exchanges]);

  const nextRequests = useMemo(
    () => (codeOpen ? conversation.references.map((_, column) => requestFor(conversation, column, draft || "Hello")) : []),
    [codeOpen, conversation, draft],
  );
  const suggestedAlias = useMemo(() => {
    for (const r of conversation.references) {
      const [, suffix] = splitReference(r);
      if (suffix.startsWith("@")) return suffix.slice(1);
    }
    return "prod";
  }, [conversation.references]);

  const setReference = (column: number, reference: string) =>
    update((c) => ({ ...c, references: c.references.map((r, i) => (i === column ? reference : r)) }));
  const locked = streaming && running?.conversationId === conversation.id;

  return (
    <div>
      <PageHeader
        title="Playground"
        description="Talk to any model, alias or version; compare two side by side before you move an alias."
        actions={
          <>
            <Button variant="outline" size="sm" onClick={() => setCodeOpen(true)}>
              <Code2 aria-hidden /> View code
            </Button>
            <CopyButton value={toMarkdown(conversation)} label="Copy conversation as Markdown" text="Copy" />
            <Button variant="outline" size="sm" onClick={() => downloadText(toMarkdown(conversation), `${slug(conversation.title)}.md`, "text/markdown")}>
              <FileText aria-hidden /> Export Markdown
            </Button>
            <Button variant="outline" size="sm" onClick={() => downloadText(toJson(conversation), `${slug(conversation.title)}.json`, "application/json")}>
              <FileJson aria-hidden /> Export JSON
            </Button>
          </>
        }
      />
      <div className="grid gap-6 lg:grid-cols-[13rem_minmax(0,1fr)_17rem]">
        <ConversationList
          conversations={store.conversations}
          currentId={conversation.id}
          onSelect={(cid) => setStore((s) => ({ ...s, currentId: cid }))}
          onNew={() => {
            const fresh = newConversation(conversation.references);
            fresh.mode = conversation.mode;
            fresh.sampling = { ...conversation.sampling };
            fresh.system = conversation.system;
            setStore((s) => ({ conversations: [fresh, ...s.conversations], currentId: fresh.id }));
            setDraft("");
            prompt.current?.focus();
          }}
          onDelete={(cid) => {
            if (running?.conversationId === cid) stop();
            setStore((s) => deleteConversation(s, cid));
          }}
        />

        <section aria-label="Chat" className="grid min-w-0 content-start gap-4" onKeyDown={onChatKey}>
          <div className="grid gap-3 rounded-lg border bg-card p-3">
            <div className={sideBySide ? "grid gap-3 md:grid-cols-2" : "grid gap-3"}>
              <ReferencePicker label={sideBySide ? "Model A" : "Model"} value={conversation.references[0] ?? ""} onChange={(r) => setReference(0, r)} disabled={locked} stacked={sideBySide} />
              {sideBySide && <ReferencePicker label="Model B" value={conversation.references[1] ?? ""} onChange={(r) => setReference(1, r)} disabled={locked} stacked />}
            </div>
            <div className="flex flex-wrap items-center gap-4">
              <div className="flex items-center gap-2">
                <Switch
                  id={`${id}-side`}
                  checked={sideBySide}
                  disabled={locked}
                  onCheckedChange={(on) => update((c) => ({ ...c, references: on ? [c.references[0] ?? "", c.references[1] ?? c.references[0] ?? ""] : [c.references[0] ?? ""] }))}
                />
                <Label htmlFor={`${id}-side`}>Side by side</Label>
              </div>
              <div className="flex items-center gap-2">
                <Label htmlFor={`${id}-mode`}>Mode</Label>
                <NativeSelect
                  id={`${id}-mode`}
                  value={conversation.mode}
                  disabled={locked}
                  className="h-8 w-auto"
                  onChange={(e) => update((c) => ({ ...c, mode: e.target.value as Mode }))}
                >
                  <option value="chat">Chat</option>
                  <option value="completion">Raw completion</option>
                </NativeSelect>
              </div>
            </div>
          </div>

          <section aria-label="Transcript" aria-busy={locked} className="grid gap-4">
            {conversation.exchanges.length === 0 && (
              <p className="rounded-lg border border-dashed p-6 text-center text-sm text-muted-foreground">
                {conversation.mode === "chat"
                  ? "No messages yet — pick a model and say something. Enter sends, Shift+Enter adds a line, Escape stops."
                  : "Raw completion: the prompt goes to the model as is, without the chat template, and it continues the text."}
              </p>
            )}
            {conversation.exchanges.map((exchange, index) => (
              <div key={index} className="grid gap-2" data-testid="exchange">
                <div className="ml-auto max-w-[85%] rounded-lg bg-primary/10 px-3 py-2 text-sm whitespace-pre-wrap" data-testid="user-message">
                  <span className="sr-only">{conversation.mode === "chat" ? "You: " : "Prompt: "}</span>
                  {exchange.prompt}
                </div>
                <div className={exchange.answers.length > 1 ? "grid gap-3 md:grid-cols-2" : "grid"}>
                  {exchange.answers.map((answer, column) =>
                    answer ? (
                      <AnswerView
                        key={column}
                        answer={answer}
                        column={column}
                        columns={exchange.answers.length}
                        streaming={!!running && running.conversationId === conversation.id && index === conversation.exchanges.length - 1 && running.columns.includes(column)}
                        onPromote={exchange.answers.length > 1 ? setPromoting : undefined}
                      />
                    ) : (
                      <div key={column} />
                    ),
                  )}
                </div>
              </div>
            ))}
            <div ref={transcriptEnd} />
          </section>

          <div className="grid gap-2 rounded-lg border bg-card p-3">
            <Label htmlFor={`${id}-prompt`}>{conversation.mode === "chat" ? "Message" : "Prompt"}</Label>
            <Textarea
              id={`${id}-prompt`}
              ref={prompt}
              rows={3}
              value={draft}
              onChange={(e) => {
                setDraft(e.target.value);
                if (formError) setFormError("");
              }}
              onKeyDown={onPromptKey}
              aria-describedby={`${id}-prompt-hint${formError ? ` ${id}-prompt-error` : ""}`}
              placeholder={conversation.mode === "chat" ? "Ask something…" : "Text for the model to continue…"}
            />
            <div className="flex flex-wrap items-center justify-between gap-2">
              <p id={`${id}-prompt-hint`} className="text-xs text-muted-foreground">
                Enter sends · Shift+Enter new line · Escape stops
              </p>
              <div className="flex gap-2">
                <Button variant="outline" size="sm" onClick={stop} disabled={!locked}>
                  <Square aria-hidden /> Stop
                </Button>
                <Button size="sm" onClick={() => void send()} disabled={streaming}>
                  <Send aria-hidden /> Send
                </Button>
              </div>
            </div>
            {formError && (
              <p id={`${id}-prompt-error`} role="alert" className="text-sm text-destructive">
                {formError}
              </p>
            )}
          </div>
          <p role="status" aria-live="polite" className="sr-only" data-testid="playground-status">
            {announcement}
          </p>
        </section>

        <aside aria-label="Settings" className="grid content-start gap-4">
          {conversation.mode === "chat" && (
            <div className="grid gap-1.5">
              <Label htmlFor={`${id}-system`}>System prompt</Label>
              <Textarea
                id={`${id}-system`}
                rows={3}
                value={conversation.system}
                disabled={locked}
                placeholder="You are a helpful assistant."
                onChange={(e) => update((c) => ({ ...c, system: e.target.value }))}
              />
            </div>
          )}
          <SamplingControls value={conversation.sampling} onChange={(sampling) => update((c) => ({ ...c, sampling }))} problems={problems} />
        </aside>
      </div>
      <ViewCodeSheet open={codeOpen} onOpenChange={setCodeOpen} requests={nextRequests} />
      <PromoteDialog modelVersion={promoting} suggestedAlias={suggestedAlias} onClose={() => setPromoting(undefined)} />
    </div>
  );
}
