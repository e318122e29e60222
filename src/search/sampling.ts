/**
 * Which grid points become trials. `'grid'` takes every point in grid order. `'random'` draws
 * `trials` distinct points without replacement, with a partial Fisher–Yates shuffle driven by
 * `mulberry32(seed)`: the same space, count and seed give the same trials in the same order, and
 * the first k trials of a larger draw equal a draw of k.
 */
import { invalidConfig } from '../errors.js'
import { mulberry32 } from '../random.js'
import { checkInteger, checkOneOf } from '../validate.js'
import { configAt, gridSize, type ResolvedSearchSpace, type TrialConfig } from './space.js'

/** How trials are drawn from the grid. */
export type Sampling = 'grid' | 'random'

/** Options of {@link sampleTrials}. */
export interface SamplingOptions {
  /** @defaultValue `'random'` */
  sampling?: Sampling
  /** Trials to draw in random mode (at most the grid size; more is ERR_OUT_OF_RANGE). Not allowed with `'grid'`. @defaultValue `9` */
  trials?: number
  /** Seed of the random draw. @defaultValue `42` */
  seed?: number
}

/** Defaults of {@link SamplingOptions}. */
export const samplingDefaults = { sampling: 'random', trials: 9, seed: 42 } as const

/** `k` distinct integers of `0 … n−1`: the first `k` entries of a seeded Fisher–Yates shuffle. */
export function sampleIndices(n: number, k: number, seed: number): number[] {
  const rand = mulberry32(seed)
  const swapped = new Map<number, number>()
  const at = (i: number): number => swapped.get(i) ?? i
  const out: number[] = []
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i))
    const vi = at(i)
    const vj = at(j)
    swapped.set(j, vi)
    out.push(vj)
  }
  return out
}

/** The trial configs of a search, in trial-id order. */
export function sampleTrials(space: ResolvedSearchSpace, options: SamplingOptions = {}): TrialConfig[] {
  const sampling = checkOneOf('sampling', options.sampling ?? samplingDefaults.sampling, ['grid', 'random'] as const)
  const size = gridSize(space)
  if (sampling === 'grid') {
    if (options.trials !== undefined) throw invalidConfig('trials', "grid sampling runs every grid point; use sampling 'random' to draw fewer")
    return Array.from({ length: size }, (_, i) => configAt(space, i))
  }
  const trials = checkInteger('trials', options.trials ?? Math.min(samplingDefaults.trials, size), { min: 1, max: size })
  const seed = checkInteger('seed', options.seed ?? samplingDefaults.seed)
  return sampleIndices(size, trials, seed).map((i) => configAt(space, i))
}
