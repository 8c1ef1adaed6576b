/**
 * `unipic bench --soak [--minutes 30] [--json]`: mixed load on loopback against `npm start`'s
 * server in a process of its own (issue 14, item 4; not in CI). What runs, all at once:
 * - 8 generating clients (8 users): text-to-image turns, an edit of their last image every
 *   fourth turn, a question about it every fifth, a cancel now and then, a new conversation
 *   every 20 turns; each follows its turn over graphql-ws to the end;
 * - 50 subscribers spread over the generators: each follows its generator's conversation and
 *   every new turn's previews, and reconnects its socket every few minutes;
 * - 4 history clients paging through conversations and turns;
 * - 2 uploaders: a PNG every 2 s, read back, and a truncated one now and then (BAD_INPUT).
 * Every 10 s it samples the server: RSS, open file descriptors, /metrics (active handles, heap,
 * subscriptions, event-hub subscribers and topics) and, on PostgreSQL, its connections. Lines:
 * `soak_minute` once a minute; at the end `soak_rss_growth_pct` and `soak_fds_growth_pct`
 * (the last fifth of the run against the fifth after warm-up), `soak_leaks` (what is left
 * once every client has gone: must be zero subscriptions, subscribers and topics) and
 * `soak_load` (turns, latencies, errors by code; errors without a code count as `unexpected`).
 */
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Client } from "graphql-ws";
import pg from "pg";
import type { Config } from "../config.js";
import { encodePngSync } from "../images/png.js";
import { BenchApi } from "./bench-api.js";
import { rssOf, startServer, stop } from "./bench-memory.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!);
};
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
const Q = {
  user: `mutation($name: String!) { createUser(name: $name) { apiKey } }`,
  conversation: `mutation { createConversation(input: { title: "soak" }) { id } }`,
  send: `mutation($input: SendMessageInput!) { sendMessage(input: $input) { assistantTurn { id } } }`,
  cancel: `mutation($id: ID!) { cancelTurn(id: $id) { status } }`,
  turn: `subscription($id: ID!) { turnUpdated(id: $id) { kind preview { step } turn { status outputImages { id } } } }`,
  conv: `subscription($id: ID!) { conversationUpdated(id: $id) { kind turn { id role } } }`,
  conversations: `query($after: String) { conversations(first: 20, after: $after) { nodes { id } pageInfo { endCursor hasNextPage } } }`,
  turns: `query($id: ID!, $before: String) { conversation(id: $id) { turns(last: 20, before: $before) { nodes { id status } pageInfo { hasPreviousPage startCursor } } } }`,
};

/** What the load saw: counts, latencies, and errors by code. */
class Tally {
  readonly counts: Record<string, number> = {};
  readonly errors: Record<string, number> = {};
  readonly ms: Record<string, number[]> = {};
  add(what: string, n = 1): void {
    this.counts[what] = (this.counts[what] ?? 0) + n;
  }
  time(what: string, ms: number): void {
    (this.ms[what] ??= []).push(ms);
  }
  /** The first few messages of `unexpected` errors, to say what they were. */
  readonly unexpected: string[] = [];
  /** A coded GraphQL/HTTP error is an answer; anything else is `unexpected` (a defect). */
  fail(error: unknown): void {
    const message = String((error as Error)?.message ?? error);
    const code = /"code":"([A-Z_]+)"/.exec(message)?.[1] ?? "unexpected";
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    if (code === "unexpected" && this.unexpected.length < 5) this.unexpected.push(`${message} ${String((error as Error)?.cause ?? "")}`.slice(0, 300));
  }
}

/** Follows one subscription to its end; resolves with the events' kinds. */
async function follow(client: Client, query: string, id: string, onEvent: (e: any) => boolean | void = () => undefined): Promise<void> {
  for await (const r of client.iterate<any>({ query, variables: { id } })) {
    if (r.errors !== undefined) throw new Error(JSON.stringify(r.errors.map((e: any) => ({ code: e.extensions?.code }))));
    if (onEvent(r.data) === true) break;
  }
}

/** A generating client: its own user and conversation; tells its subscribers of each new turn. */
class Generator {
  conversationId = "";
  readonly watchers = new Set<(turnId: string, conversationId: string) => void>();
  private lastImage: string | null = null;
  constructor(
    readonly api: BenchApi,
    private readonly tally: Tally,
  ) {}

  async run(until: () => boolean): Promise<void> {
    const client = this.api.client(false);
    try {
      for (let i = 0; !until(); i++) {
        if (i % 20 === 0) this.conversationId = (await this.api.gql(Q.conversation)).createConversation.id;
        const edit = i % 4 === 3 && this.lastImage !== null;
        const ask = !edit && i % 5 === 4 && this.lastImage !== null;
        const text = edit ? "make the circle blue" : ask ? "what color is the circle?" : ["a red circle", "a blue square to the left of a green triangle", "two yellow circles"][i % 3]!;
        const kind = edit ? "edit" : ask ? "understand" : "generate";
        const t0 = performance.now();
        try {
          const input = { conversationId: this.conversationId, text, ...(edit || ask ? { imageIds: [this.lastImage] } : {}) };
          const turnId = (await this.api.gql(Q.send, { input })).sendMessage.assistantTurn.id as string;
          for (const w of this.watchers) w(turnId, this.conversationId);
          const cancel = i % 13 === 12;
          if (cancel) setTimeout(() => void this.api.gql(Q.cancel, { id: turnId }).catch((e) => this.tally.fail(e)), 300);
          let status = "";
          await follow(client, Q.turn, turnId, (d) => {
            const e = d.turnUpdated;
            // A turn that ended before the subscription began answers with one SNAPSHOT of it.
            const final = FINAL.has(e.kind) ? e.kind : e.kind === "SNAPSHOT" && FINAL.has(e.turn.status) ? e.turn.status : null;
            if (final === null) return;
            status = final;
            if (e.kind === "COMPLETED" && e.turn.outputImages.length > 0) this.lastImage = e.turn.outputImages[0].id;
            return true;
          });
          this.tally.add(`turn_${status.toLowerCase() || "unfinished"}`);
          if (status === "COMPLETED") this.tally.time(kind, performance.now() - t0);
        } catch (error) {
          this.tally.fail(error);
          // RATE_LIMITED / QUOTA_EXCEEDED carry retryAfterMs; a short pause is enough to honour it here.
          await sleep(1000);
        }
      }
    } finally {
      await client.dispose();
    }
  }
}

/** A subscriber of one generator: its conversation's events and every new turn's previews. */
async function subscriber(api: BenchApi, gen: Generator, tally: Tally, until: () => boolean, seed: number): Promise<void> {
  const reconnectMs = 120_000 + ((seed * 7919) % 120_000);
  while (!until()) {
    const client = api.client(false);
    const opened = performance.now();
    let conversation: { id: string; stop: () => void } | null = null;
    const turns = new Set<Promise<void>>();
    const onTurn = (turnId: string, conversationId: string): void => {
      if (conversation?.id !== conversationId) {
        conversation?.stop();
        const stopConv = client.subscribe({ query: Q.conv, variables: { id: conversationId } }, { next: () => tally.add("conversation_events"), error: (e) => tally.fail(e), complete: () => undefined });
        conversation = { id: conversationId, stop: stopConv };
      }
      const p = follow(client, Q.turn, turnId, (d) => void tally.add(d.turnUpdated.kind === "STEP" ? "previews_seen" : "turn_events")).catch((e) => tally.fail(e));
      turns.add(p);
      void p.finally(() => turns.delete(p));
    };
    gen.watchers.add(onTurn);
    while (!until() && performance.now() - opened < reconnectMs) await sleep(1000);
    gen.watchers.delete(onTurn);
    // Leave mid-turn on purpose: a socket that goes away must release everything it held.
    (conversation as { stop: () => void } | null)?.stop();
    await client.dispose();
    tally.add("subscriber_reconnects");
  }
}

async function historyClient(api: BenchApi, tally: Tally, until: () => boolean): Promise<void> {
  while (!until()) {
    try {
      let after: string | null = null;
      let first: string | null = null;
      do {
        const t0 = performance.now();
        const page: any = (await api.gql(Q.conversations, { after })).conversations;
        tally.time("history_conversations", performance.now() - t0);
        first ??= page.nodes[0]?.id ?? null;
        after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      } while (after !== null && !until());
      let before: string | null = null;
      for (let k = 0; first !== null && k < 5 && !until(); k++) {
        const t0 = performance.now();
        const turns: any = (await api.gql(Q.turns, { id: first, before })).conversation.turns;
        tally.time("history_turns", performance.now() - t0);
        if (!turns.pageInfo.hasPreviousPage) break;
        before = turns.pageInfo.startCursor;
      }
    } catch (error) {
      tally.fail(error);
    }
    await sleep(200);
  }
}

async function uploader(api: BenchApi, tally: Tally, until: () => boolean): Promise<void> {
  for (let i = 0; !until(); i++) {
    const png = encodePngSync(new Uint8Array(randomBytes(64 * 64 * 3)), 64, 64);
    const body = i % 10 === 9 ? png.subarray(0, png.length >> 1) : png; // a truncated file now and then
    try {
      const t0 = performance.now();
      const res = await fetch(`${api.url}/images`, { method: "POST", headers: { authorization: `Bearer ${api.key}`, "content-type": "image/png" }, body: Buffer.from(body) });
      const answer = (await res.json()) as { url?: string; error?: { code: string } };
      if (answer.error !== undefined) throw new Error(JSON.stringify([{ code: answer.error.code }]));
      tally.time("upload", performance.now() - t0);
      const back = await fetch(`${api.url}${answer.url}`, { headers: { authorization: `Bearer ${api.key}` } });
      await back.arrayBuffer();
      tally.add(back.ok ? "uploads_read_back" : "uploads_unreadable");
    } catch (error) {
      tally.fail(error);
    }
    await sleep(2000);
  }
}

interface Sample {
  t: number;
  rss: number;
  anon: number;
  fds: number;
  gauges: Record<string, number>;
  pgConnections: number | null;
}

/** The server's state from outside: /proc, /metrics, and pg_stat_activity on PostgreSQL. */
async function sample(pid: number, admin: BenchApi, db: { client: pg.Client; name: string } | null, t0: number): Promise<Sample> {
  const text = await (await fetch(`${admin.url}/metrics`, { headers: { authorization: `Bearer ${admin.key}` } })).text();
  const gauge = (pattern: string): number => Number(new RegExp(`^${pattern} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  const gauges = {
    handles: gauge("nodejs_active_handles_total"),
    heap_mb: gauge("nodejs_heap_size_used_bytes") / 2 ** 20,
    // ArrayBuffers and WebAssembly memories (PGlite's database lives in one) outside the JS heap.
    external_mb: gauge("nodejs_external_memory_bytes") / 2 ** 20,
    subscriptions: gauge("unipic_active_subscriptions"),
    turn_subscribers: gauge('unipic_hub_subscribers\\{hub="turn"\\}'),
    conversation_subscribers: gauge('unipic_hub_subscribers\\{hub="conversation"\\}'),
    topics: gauge('unipic_hub_topics\\{hub="turn"\\}') + gauge('unipic_hub_topics\\{hub="conversation"\\}'),
  };
  const pgConnections = db === null ? null : Number((await db.client.query("select count(*) as n from pg_stat_activity where datname = $1", [db.name])).rows[0].n);
  const { rss, anon } = rssOf(pid);
  return { t: (performance.now() - t0) / 60_000, rss, anon, fds: readdirSync(`/proc/${pid}/fd`).length, gauges, pgConnections };
}

/** Growth of `pick` from the fifth of the run after warm-up to the last fifth, in percent. */
function growth(samples: Sample[], warmupMin: number, minutes: number, pick: (s: Sample) => number): { early: number; late: number; pct: number } {
  const span = (minutes - warmupMin) / 5;
  const early = mean(samples.filter((s) => s.t >= warmupMin && s.t < warmupMin + span).map(pick));
  const late = mean(samples.filter((s) => s.t >= minutes - span && s.t <= minutes).map(pick));
  return { early: Math.round(early), late: Math.round(late), pct: Math.round(((late - early) / early) * 1000) / 10 };
}

export async function runSoak(config: Config, minutes: number, emit: (m: Record<string, unknown>) => void): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "unipic-soak-"));
  let db: { client: pg.Client; name: string } | null = null;
  const env: Record<string, string> = { DATA_DIR: dir, DATABASE_URL: "", REDIS_URL: "" };
  if (config.databaseUrl !== undefined) {
    const name = `unipic_soak_${randomBytes(4).toString("hex")}`;
    const admin = new pg.Client({ connectionString: config.databaseUrl });
    await admin.connect();
    await admin.query(`create database "${name}"`);
    const url = new URL(config.databaseUrl);
    url.pathname = `/${name}`;
    env.DATABASE_URL = url.toString();
    db = { client: admin, name };
  }
  const { child, out: stdout } = await startServer(env);
  const tally = new Tally();
  try {
    const out = stdout();
    const url = /listening on (http:\/\/\S+)\/graphql/.exec(out)![1]!;
    const admin = new BenchApi(url, /^API key: (\S+)$/m.exec(out)![1]!);
    const t0 = performance.now();
    const samples: Sample[] = [await sample(child.pid!, admin, db, t0)];
    const idle = samples[0]!;
    const end = t0 + minutes * 60_000;
    const until = (): boolean => performance.now() >= end;
    const users = await Promise.all(Array.from({ length: 8 }, async (_, i) => new BenchApi(url, (await admin.gql(Q.user, { name: `soak-${i}` })).createUser.apiKey)));
    const gens = users.map((api) => new Generator(api, tally));
    const load = [
      ...gens.map((g) => g.run(until)),
      ...Array.from({ length: 50 }, (_, i) => subscriber(users[i % 8]!, gens[i % 8]!, tally, until, i)),
      ...Array.from({ length: 4 }, (_, i) => historyClient(users[i]!, tally, until)),
      ...Array.from({ length: 2 }, (_, i) => uploader(users[i + 4]!, tally, until)),
    ];
    let minute = 1;
    while (!until()) {
      await sleep(10_000);
      const s = await sample(child.pid!, admin, db, t0);
      samples.push(s);
      if (s.t >= minute) {
        emit({ metric: "soak_minute", value: minute, rss_mb: Math.round(s.rss), anon_mb: Math.round(s.anon), fds: s.fds, ...Object.fromEntries(Object.entries(s.gauges).map(([k, v]) => [k, Math.round(v)])), pg_connections: s.pgConnections, turns_completed: tally.counts.turn_completed ?? 0 });
        minute = Math.floor(s.t) + 1;
      }
    }
    await Promise.all(load);
    // Every client has gone: what the server still holds for them is a leak.
    let after = await sample(child.pid!, admin, db, t0);
    for (let i = 0; i < 30 && (after.gauges.subscriptions > 0 || after.gauges.turn_subscribers + after.gauges.conversation_subscribers > 0 || after.gauges.topics > 0); i++) {
      await sleep(1000);
      after = await sample(child.pid!, admin, db, t0);
    }
    const warmup = Math.min(5, minutes / 6);
    const rss = growth(samples, warmup, minutes, (s) => s.rss);
    const fds = growth(samples, warmup, minutes, (s) => s.fds);
    emit({ metric: "soak_rss_growth_pct", value: rss.pct, early_mb: rss.early, late_mb: rss.late, idle_mb: Math.round(idle.rss), warmup_min: warmup, minutes, within_5pct: Math.abs(rss.pct) <= 5 });
    emit({ metric: "soak_fds_growth_pct", value: fds.pct, early: fds.early, late: fds.late, idle: idle.fds, within_5pct: Math.abs(fds.pct) <= 5 });
    const leaks = { subscriptions: after.gauges.subscriptions, hub_subscribers: after.gauges.turn_subscribers + after.gauges.conversation_subscribers, hub_topics: after.gauges.topics };
    emit({
      metric: "soak_leaks",
      value: leaks.subscriptions + leaks.hub_subscribers + leaks.hub_topics,
      ...leaks,
      handles: { idle: idle.gauges.handles, after: after.gauges.handles },
      fds: { idle: idle.fds, after: after.fds },
      pg_connections: { idle: idle.pgConnections, after: after.pgConnections },
    });
    const latency = Object.fromEntries(Object.entries(tally.ms).map(([k, v]) => [k, { n: v.length, p50: percentile(v, 50), p99: percentile(v, 99) }]));
    emit({ metric: "soak_load", value: tally.counts.turn_completed ?? 0, store: db === null ? "pglite" : "pg", counts: tally.counts, errors: tally.errors, unexpected: tally.unexpected, latency_ms: latency, server_alive: child.exitCode === null, cores: os.availableParallelism() });
  } finally {
    await stop(child);
    if (db !== null) {
      await db.client.query(`drop database if exists "${db.name}" with (force)`).catch(() => undefined);
      await db.client.end();
    }
    await rm(dir, { recursive: true, force: true });
  }
}
