/**
 * Turn and conversation events, and their in-process fan-out to subscribers.
 *
 * Each subscriber owns a small queue (a Channel). A progress event (a MAR step with its preview,
 * a text token) merges with an unread one of the same kind, so a slow client gets one up-to-date
 * event instead of a growing backlog: a newer preview simply replaces the older one (latest
 * wins), while text tokens join their deltas, so no text is lost (turnHub's rule, joinDeltas).
 * Status events (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED, ...) are never merged or dropped
 * and keep order. This mirrors vLLM's RequestOutputCollector and llama.cpp's partial/final split.
 */
import { Channel } from "../channel.js";
import type { ConversationRow, TurnRow } from "../store/index.js";

export interface HubEvent {
  /** Progress events with the same coalesceKey merge while unread (the hub's `merge` rule). */
  coalesceKey?: string;
}

/**
 * Carries a hub's events between processes (src/redis/events.ts, when scaled out). Without one,
 * `publish` delivers in process: today's single-process behaviour.
 */
export interface HubTransport<E> {
  /** Sends an event to every process's subscribers of the topic, this one's included. */
  send(topic: string, event: E): void;
  /** Starts receiving a topic; resolves once anything sent after it will arrive. */
  listen(topic: string, deliver: (event: E) => void): Promise<void>;
  unlisten(topic: string): void;
}

/** A topic-keyed hub. Topics are strings such as a turn id; events are delivered to live subscribers only. */
export class EventHub<E extends HubEvent> {
  private readonly topics = new Map<string, Set<Channel<E>>>();
  /** Per topic, the transport's subscription (resolved once it receives): the snapshot waits for it. */
  private readonly listening = new Map<string, Promise<void>>();

  /** `merge(unread, incoming)`: the one event a subscriber gets for both; by default the newer. */
  constructor(
    private readonly merge: (unread: E, incoming: E) => E = (_unread, incoming) => incoming,
    private readonly transport: HubTransport<E> | null = null,
  ) {}

  publish(topic: string, event: E): void {
    if (this.transport !== null) this.transport.send(topic, event);
    else this.deliver(topic, event);
  }

  /** Hands an event to this process's subscribers of the topic only (never to the transport). */
  deliver(topic: string, event: E): void {
    const subs = this.topics.get(topic);
    if (subs === undefined) return;
    for (const sub of subs) sub.push(event);
  }

  /**
   * Whether anyone listens to a topic now (so a publisher can skip building an event). Across
   * processes this one cannot know, so it says yes.
   */
  watched(topic: string): boolean {
    return this.transport !== null || this.topics.has(topic);
  }

  /** Number of live subscribers, across topics (for metrics). */
  get size(): number {
    let n = 0;
    for (const subs of this.topics.values()) n += subs.size;
    return n;
  }

  /**
   * Subscribes before the caller reads any snapshot, so nothing published in between is lost.
   * `first` events are yielded before anything published. Ends when `return()` is called
   * (graphql-ws does so when the client completes or disconnects) or when `closeAll()` runs.
   */
  subscribe(topic: string, first: () => Promise<E[]>): AsyncGenerator<E, void, undefined> {
    const sub = new Channel<E>((unread, incoming) => (incoming.coalesceKey !== undefined && unread.coalesceKey === incoming.coalesceKey ? this.merge(unread, incoming) : undefined));
    let subs = this.topics.get(topic);
    if (subs === undefined) {
      subs = new Set();
      this.topics.set(topic, subs);
      const transport = this.transport;
      if (transport !== null) this.listening.set(topic, transport.listen(topic, (event) => this.deliver(topic, event)));
    }
    subs.add(sub);
    const listening = this.listening.get(topic);
    const remove = (): void => {
      sub.close();
      const set = this.topics.get(topic);
      set?.delete(sub);
      if (set !== undefined && set.size === 0) {
        this.topics.delete(topic);
        if (this.listening.delete(topic)) this.transport?.unlisten(topic);
      }
    };
    const published = sub.drain(remove);
    async function* run(): AsyncGenerator<E, void, undefined> {
      try {
        // Across processes the snapshot is read only once the transport receives the topic.
        await listening;
        for (const e of await first()) yield e;
        yield* published;
      } finally {
        remove();
      }
    }
    const gen = run();
    // An unstarted generator skips its finally block on return(); remove the subscriber anyway.
    const finish = gen.return.bind(gen);
    gen.return = (value) => {
      remove();
      return finish(value);
    };
    return gen;
  }

  /** Ends every subscription (server shutdown). */
  closeAll(): void {
    for (const subs of this.topics.values()) for (const sub of subs) sub.close();
    for (const topic of this.listening.keys()) this.transport?.unlisten(topic);
    this.listening.clear();
    this.topics.clear();
  }

  /** Number of topics with a subscriber (for metrics: a topic left behind is a leak). */
  get topicCount(): number {
    return this.topics.size;
  }

  /** Topics with a subscriber in this process (the API node refreshes their queue positions). */
  localTopics(): string[] {
    return [...this.topics.keys()];
  }
}

/** What a turn's watchers are told; registered as the GraphQL enum TurnEventKind. */
export const TurnEventKind = {
  /** The turn as it is now; always the first event of a subscription. */
  SNAPSHOT: "SNAPSHOT",
  QUEUED: "QUEUED",
  RUNNING: "RUNNING",
  /** One MAR iteration finished (step, totalSteps, maybe a preview). */
  STEP: "STEP",
  /** Understanding produced text (delta and the text so far). */
  TOKEN: "TOKEN",
  COMPLETED: "COMPLETED",
  FAILED: "FAILED",
  CANCELLED: "CANCELLED",
} as const;
export type TurnEventKind = (typeof TurnEventKind)[keyof typeof TurnEventKind];

/** What a conversation's watchers are told; registered as the GraphQL enum ConversationEventKind. */
export const ConversationEventKind = { SNAPSHOT: "SNAPSHOT", TURN_ADDED: "TURN_ADDED", TURN_UPDATED: "TURN_UPDATED", RENAMED: "RENAMED", DELETED: "DELETED" } as const;
export type ConversationEventKind = (typeof ConversationEventKind)[keyof typeof ConversationEventKind];

export interface PreviewPayload {
  step: number;
  width: number;
  height: number;
  dataUrl: string | null;
  url: string | null;
}

export interface TurnHubEvent extends HubEvent {
  kind: TurnEventKind;
  turn: TurnRow;
  queuePosition?: number | null;
  etaMs?: number | null;
  step?: number | null;
  totalSteps?: number | null;
  preview?: PreviewPayload | null;
  delta?: string | null;
  /** When the engine finished the step, ms since the epoch (latency measurements). */
  producedAt?: number;
}

export interface ConversationHubEvent extends HubEvent {
  kind: ConversationEventKind;
  conversation: ConversationRow | null;
  turn: TurnRow | null;
}

/** The two hubs turn events go to: one topic per turn, one per conversation. */
export interface TurnEvents {
  turnHub: EventHub<TurnHubEvent>;
  conversationHub: EventHub<ConversationHubEvent>;
}

/**
 * A turn's unread progress for a slow subscriber: the newer event, and for TOKEN events the
 * unread delta joined before the newer one, so `delta` stays "the new text since the previous
 * TOKEN event" that this subscriber received and concatenating deltas gives the whole text.
 */
export function joinDeltas(unread: TurnHubEvent, incoming: TurnHubEvent): TurnHubEvent {
  if (incoming.kind !== TurnEventKind.TOKEN || unread.kind !== TurnEventKind.TOKEN) return incoming;
  return { ...incoming, delta: (unread.delta ?? "") + (incoming.delta ?? "") };
}

/** The two hubs: in process, or over a transport per hub when scaled out. */
export function createTurnEvents(transports?: { turn: HubTransport<TurnHubEvent>; conversation: HubTransport<ConversationHubEvent> }): TurnEvents {
  const keepNewer = (_unread: ConversationHubEvent, incoming: ConversationHubEvent): ConversationHubEvent => incoming;
  return { turnHub: new EventHub(joinDeltas, transports?.turn ?? null), conversationHub: new EventHub(keepNewer, transports?.conversation ?? null) };
}

const STATUS_EVENT: Record<TurnRow["status"], TurnEventKind> = {
  QUEUED: TurnEventKind.QUEUED,
  RUNNING: TurnEventKind.RUNNING,
  COMPLETED: TurnEventKind.COMPLETED,
  FAILED: TurnEventKind.FAILED,
  CANCELLED: TurnEventKind.CANCELLED,
};

/** Publishes a turn's new status to its watchers and to its conversation's watchers. */
export function publishTurnStatus(events: TurnEvents, turn: TurnRow, extra: Partial<TurnHubEvent> = {}): void {
  events.turnHub.publish(turn.id, { kind: STATUS_EVENT[turn.status], turn, ...extra });
  events.conversationHub.publish(turn.conversationId, { kind: ConversationEventKind.TURN_UPDATED, conversation: null, turn });
}
