/**
 * The admission queue: bounded, highest priority first, and within a priority the users take
 * turns (round robin), so one user's burst cannot starve the others. Pure and synchronous: the
 * engine loop asks it for the next job and for everyone's position.
 */
import { AppError, ErrorCode } from "../errors.js";

export interface Queued {
  id: string;
  priority: number;
  user: string;
}

export class JobQueue<T extends Queued> {
  private readonly items: T[] = [];
  /** Users in the order they were last served (least recent first). */
  private readonly served: string[] = [];

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length;
  }

  /** QUEUE_FULL at once when the queue holds `capacity` jobs. */
  push(item: T): void {
    if (this.items.length >= this.capacity) {
      throw new AppError(ErrorCode.QUEUE_FULL, `the queue is full (${this.capacity} jobs waiting); try again shortly`, {
        field: "queue",
        expected: `fewer than ${this.capacity} waiting jobs`,
        got: `${this.items.length}`,
      });
    }
    this.items.push(item);
  }

  remove(id: string): T | undefined {
    const at = this.items.findIndex((i) => i.id === id);
    return at < 0 ? undefined : this.items.splice(at, 1)[0];
  }

  /** Index of the job that would be taken next, without taking it. */
  private nextIndex(items: T[], served: string[]): number {
    if (items.length === 0) return -1;
    const top = Math.max(...items.map((i) => i.priority));
    let best = -1;
    let bestRank = Infinity;
    items.forEach((item, index) => {
      if (item.priority !== top) return;
      // Never-served users first (rank -1), then least recently served; FIFO within a user.
      const rank = served.indexOf(item.user);
      if (rank < bestRank) {
        best = index;
        bestRank = rank;
      }
    });
    return best;
  }

  shift(): T | undefined {
    const at = this.nextIndex(this.items, this.served);
    if (at < 0) return undefined;
    const [item] = this.items.splice(at, 1);
    const seen = this.served.indexOf(item!.user);
    if (seen >= 0) this.served.splice(seen, 1);
    this.served.push(item!.user);
    return item;
  }

  /** Every queued job's position (0 = next), by simulating the order they will be taken in. */
  positions(): Map<string, number> {
    const items = [...this.items];
    const served = [...this.served];
    const out = new Map<string, number>();
    for (let pos = 0; items.length > 0; pos++) {
      const at = this.nextIndex(items, served);
      const [item] = items.splice(at, 1);
      out.set(item!.id, pos);
      const seen = served.indexOf(item!.user);
      if (seen >= 0) served.splice(seen, 1);
      served.push(item!.user);
    }
    return out;
  }
}
