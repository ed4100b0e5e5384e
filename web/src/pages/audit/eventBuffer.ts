/**
 * The events the audit page holds, in one plain array that only grows (or is
 * cleared for new filters). Events arriving from a stream are buffered and
 * appended in batches, so a log of 100,000 events costs a few hundred renders,
 * not 100,000. It is an external store for useSyncExternalStore: the snapshot
 * is a version number that changes on each flush.
 */
import type { HubEvent } from "@/api/types";
import { positionAfter } from "@/pages/audit/events";

export const FLUSH_INTERVAL_MS = 100;

export class EventBuffer {
  readonly events: HubEvent[] = [];
  private pending: HubEvent[] = [];
  private version = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly listeners = new Set<() => void>();
  /** The position of the last event accepted (flushed or pending); "0" when none. */
  lastPosition = "0";

  constructor(private readonly interval = FLUSH_INTERVAL_MS) {}

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): number => this.version;

  get length(): number {
    return this.events.length;
  }

  /** Queue an event; events at or before the last position (a resumed stream's repeats) are dropped. */
  push(event: HubEvent | undefined): void {
    if (!event || !positionAfter(event.position, this.lastPosition)) return;
    this.lastPosition = event.position!;
    this.pending.push(event);
    if (this.timer === undefined) this.timer = setTimeout(this.flush, this.interval);
  }

  /** Append the queued events now and tell the listeners (once). */
  flush = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    for (const event of this.pending) this.events.push(event);
    this.pending = [];
    this.changed();
  };

  /** Forget everything (new filters). */
  reset(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
    this.events.length = 0;
    this.lastPosition = "0";
    this.changed();
  }

  private changed(): void {
    this.version += 1;
    this.listeners.forEach((listener) => listener());
  }
}
