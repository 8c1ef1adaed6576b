/**
 * The engine's one source of randomness: a seeded xoshiro128** generator per job. It drives the
 * MAR orders and every Gaussian draw, so a job's draws depend on its seed alone (never on other
 * jobs it is batched with), and the same seed gives the same image (docs/model.md section 3.6,
 * "Randomness and batching").
 * The generator is specified here so any language can reproduce it; tests pin its first outputs.
 */

/** splitmix32: spreads a 32-bit seed over xoshiro's 128-bit state. */
function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) | 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [s, (z ^ (z >>> 16)) >>> 0];
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** A spare standard normal from the last Box-Muller pair. */
  private spare: number | null = null;

  constructor(seed: number) {
    let st = seed | 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(st);
      st = next;
      words.push(out);
    }
    [this.s0, this.s1, this.s2, this.s3] = words as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** Captures the full state; calling the result restores it. */
  mark(): () => void {
    const saved = [this.s0, this.s1, this.s2, this.s3, this.spare] as const;
    return () => {
      [this.s0, this.s1, this.s2, this.s3, this.spare] = saved;
    };
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform integer in [0, n), without modulo bias. */
  below(n: number): number {
    if (n <= 0 || n > 2 ** 32) throw new RangeError(`below(${n})`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** A standard normal (Box-Muller, both values of each pair used in order). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform(); // log(0) guard
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** `n` standard normals as float32. */
  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const tmp = p[i]!;
      p[i] = p[j]!;
      p[j] = tmp;
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Where a job's random draws come from: a seeded Rng in production, or a recorded sequence
 * (the Python reference's fixtures) for parity tests. Draw order: one order per image, then per
 * MAR iteration the initial noise [n, C] and, for k = S-1 .. 1, the per-step noise [n, C].
 */
export interface DrawSource {
  order(L: number): Int32Array;
  normals(count: number): Float32Array;
  /** Captures the position in the stream; calling the result rewinds to it (to retry a step). */
  mark(): () => void;
}

export function seededDraws(seed: number): DrawSource {
  const rng = new Rng(seed);
  return { order: (L) => rng.permutation(L), normals: (count) => rng.normals(count), mark: () => rng.mark() };
}

/** Replays recorded draws in order; throws when the recording runs out or a size differs. */
export function replayDraws(orders: Int32Array[], normals: Float32Array[]): DrawSource {
  let o = 0;
  let n = 0;
  return {
    order(L) {
      const next = orders[o++];
      if (next === undefined || next.length !== L) throw new Error(`replay: order ${o - 1} missing or not of length ${L}`);
      return next;
    },
    normals(count) {
      const next = normals[n++];
      if (next === undefined || next.length !== count) throw new Error(`replay: normals ${n - 1} missing or not of size ${count} (got ${next?.length})`);
      return Float32Array.from(next);
    },
    mark() {
      const [so, sn] = [o, n];
      return () => {
        o = so;
        n = sn;
      };
    },
  };
}
