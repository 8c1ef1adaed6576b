/** Channel, the one async queue: order, a normal or failed end, early return, coalescing. */
import { describe, expect, it } from "vitest";
import { Channel } from "../src/channel.js";
import { collect } from "./helpers/collect.js";

describe("channel", () => {
  it("yields items in order, those queued before close() included, then ends", async () => {
    const c = new Channel<number>();
    const read = collect(c.drain());
    c.push(1);
    c.push(2);
    await new Promise((r) => setImmediate(r));
    c.push(3);
    c.close();
    c.push(4); // after the end: dropped
    expect(await read).toEqual([1, 2, 3]);
  });

  it("throws the failure after the items before it", async () => {
    const c = new Channel<string>();
    c.push("a");
    c.fail(new Error("broken"));
    const seen: string[] = [];
    await expect(collect(c.drain(), { onItem: (item) => seen.push(item) })).rejects.toThrow("broken");
    expect(seen).toEqual(["a"]);
  });

  it("calls onReturn when the consumer stops before the end, and not after it", async () => {
    let returned = 0;
    const open = new Channel<number>();
    open.push(1);
    for await (const _ of open.drain(() => returned++)) break;
    expect(returned).toBe(1);
    const ended = new Channel<number>();
    ended.push(1);
    ended.close();
    for await (const _ of ended.drain(() => returned++)) break;
    expect(returned).toBe(1);
  });

  it("merges an unread item with a newer one when coalesce says so, after what came between", async () => {
    const sum = (a: string, b: string): string | undefined => (a.startsWith("+") && b.startsWith("+") ? `+${a.slice(1)}${b.slice(1)}` : undefined);
    const c = new Channel<string>(sum);
    for (const item of ["+a", "status", "+b", "+c"]) c.push(item);
    c.close();
    expect(await collect(c.drain())).toEqual(["status", "+abc"]);
  });
});
