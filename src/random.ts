/**
 * A small deterministic PRNG (mulberry32) and a seeded Fisher–Yates shuffle, so the trainer's batch
 * order depends only on `(seed, epoch)` and a resumed run sees exactly the same batches.
 */

/** A generator of uniform floats in [0, 1). */
export type Random = () => number

/** mulberry32 seeded with the low 32 bits of `seed`. */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A permutation of `0 … n−1`, Fisher–Yates with `mulberry32(seed)`. */
export function shuffledIndices(n: number, seed: number): number[] {
  const rand = mulberry32(seed)
  const out = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const tmp = out[i]!
    out[i] = out[j]!
    out[j] = tmp
  }
  return out
}
