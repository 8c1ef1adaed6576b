// A small seeded PRNG (mulberry32) so that ShapesEval case files and training scenes are
// reproducible from a seed. Not cryptographic; 2^32 period is plenty for test-case sampling.

export class Rng {
  private state: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`Rng: seed must be an integer, got ${seed}`);
    // Fold any integer (even above 2^32 or negative) into 32 bits.
    this.state = Number(BigInt.asUintN(32, BigInt(seed)));
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi]. */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Rng.choice: empty list");
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** Fisher-Yates, returning a shuffled copy. */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }
}
