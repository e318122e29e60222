/**
 * The search space of `search`: a list of candidate values per hyperparameter (intervention kind,
 * layer set, positions, rank, learning rate, epochs). The grid is their Cartesian product; one
 * point of it is a {@link TrialConfig}. Grid order is mixed-radix with `epochs` varying fastest,
 * then `lr`, `rank`, `positions`, `layers`, `kind`.
 *
 * Layer sets are `'all'`, `'middle'` (the model's middle layer, `⌊numLayers / 2⌋`, which is what
 * `reft train` uses when no layers are given) or explicit indices. In strings (CLI flags, JSON)
 * indices inside one set are separated by `;`, sets by `,`: `--layers "middle,all,0;2;4"`.
 */
import { interventionKinds, parsePositions, type InterventionKind, type Positions } from '../config.js'
import { invalidConfig } from '../errors.js'
import { checkInteger, checkNumber, checkOneOf, describe } from '../validate.js'

/** A set of layers to intervene on. */
export type LayerSet = 'all' | 'middle' | number[]

/** Candidate values per hyperparameter; a missing key takes {@link defaultSearchSpace}'s list. */
export interface SearchSpace {
  /** Intervention kinds. @defaultValue `['loreft']` */
  kind?: InterventionKind[]
  /** Layer sets (`'all'`, `'middle'`, `[0, 2, 4]` or `'0;2;4'`). @defaultValue `['middle', 'all']` */
  layers?: (LayerSet | string | number)[]
  /** Positions in pyreft's notation. @defaultValue `['l1', 'f1+l1', 'f3+l3']` */
  positions?: string[]
  /** Low-rank dimensions. @defaultValue `[2, 4, 8]` */
  rank?: number[]
  /** Peak learning rates of the linear schedule. @defaultValue `[1e-3, 4e-3, 1e-2]` */
  lr?: number[]
  /** Epochs of a full-budget run. @defaultValue `[1, 2]` */
  epochs?: number[]
}

/** A validated space: every key present, values canonical (positions as `f<n>+l<m>`, `f<n>` or `l<m>`). */
export interface ResolvedSearchSpace {
  kind: InterventionKind[]
  layers: LayerSet[]
  positions: string[]
  rank: number[]
  lr: number[]
  epochs: number[]
}

/** One point of the grid. */
export interface TrialConfig {
  kind: InterventionKind
  layers: LayerSet
  positions: string
  rank: number
  lr: number
  epochs: number
}

/** The hyperparameters, in grid order (the last varies fastest). */
export const searchDimensions = ['kind', 'layers', 'positions', 'rank', 'lr', 'epochs'] as const

/** The space used for keys a {@link SearchSpace} leaves out (3·2·3·3·2 = 108 points with one kind). */
export const defaultSearchSpace: Readonly<ResolvedSearchSpace> = {
  kind: ['loreft'],
  layers: ['middle', 'all'],
  positions: ['l1', 'f1+l1', 'f3+l3'],
  rank: [2, 4, 8],
  lr: [1e-3, 4e-3, 1e-2],
  epochs: [1, 2],
}

/**
 * The default space of a GLUE search (2·3·3·3·2 = 108 points): the paper's GLUE recipes intervene
 * on every layer at prefix positions with rank 1; the lr and epochs are around the CPU-scaled
 * setting of docs/EXPERIMENTS.md (lr 1e-2, 3 epochs on 500 examples).
 */
export const defaultGlueSearchSpace: Readonly<ResolvedSearchSpace> = {
  kind: ['loreft'],
  layers: ['all', 'middle'],
  positions: ['f1', 'f3', 'f5'],
  rank: [1, 2, 4],
  lr: [3e-3, 1e-2, 3e-2],
  epochs: [3, 5],
}

/** Canonical pyreft notation of parsed positions. */
export function formatPositions(p: Positions): string {
  if (p.first > 0 && p.last > 0) return `f${p.first}+l${p.last}`
  return p.first > 0 ? `f${p.first}` : `l${p.last}`
}

/** `'all'`, `'middle'`, `'3'` or `'0;2;4'` (also a bare number or an index array from JSON). */
export function parseLayerSet(value: unknown, field = 'layers'): LayerSet {
  if (value === 'all' || value === 'middle') return value
  if (typeof value === 'number') return [checkInteger(field, value, { min: 0 })]
  if (Array.isArray(value)) {
    if (value.length === 0) throw invalidConfig(field, 'a layer set must not be empty')
    return value.map((v, i) => checkInteger(`${field}[${i}]`, v, { min: 0 }))
  }
  if (typeof value === 'string') {
    const parts = value.split(';').map((s) => s.trim())
    if (parts.every((s) => /^\d+$/.test(s))) return parts.map(Number)
  }
  throw invalidConfig(field, `expected 'all', 'middle', an index or indices joined by ';' (e.g. '0;2;4'), got ${describe(value)}`)
}

/** A layer set as text: `all`, `middle` or `0;2;4`. */
export function formatLayerSet(layers: LayerSet): string {
  return typeof layers === 'string' ? layers : layers.join(';')
}

/** The layer indices of a set on a model with `numLayers` layers. */
export function resolveLayerSet(layers: LayerSet, numLayers: number): number[] | 'all' {
  if (layers === 'middle') return [Math.floor(numLayers / 2)]
  return layers === 'all' ? 'all' : [...layers]
}

function list<T>(field: string, value: unknown, parse: (v: unknown, f: string) => T, key: (v: T) => string): T[] {
  if (!Array.isArray(value) || value.length === 0) throw invalidConfig(field, `expected a non-empty array, got ${describe(value)}`)
  const seen = new Set<string>()
  return value.map((v, i) => {
    const parsed = parse(v, `${field}[${i}]`)
    const k = key(parsed)
    if (seen.has(k)) throw invalidConfig(`${field}[${i}]`, `${k} is listed twice`)
    seen.add(k)
    return parsed
  })
}

const spaceKeys: readonly string[] = searchDimensions

/**
 * Validates a space (unknown keys, types, ranges, duplicates: ERR_INVALID_CONFIG or
 * ERR_OUT_OF_RANGE naming the field) and fills in the missing keys from `defaults`. Layer indices
 * are checked against the model later, when a trial is built.
 */
export function resolveSearchSpace(space: SearchSpace = {}, defaults: Readonly<ResolvedSearchSpace> = defaultSearchSpace): ResolvedSearchSpace {
  if (typeof space !== 'object' || space === null || Array.isArray(space)) throw invalidConfig('space', `expected an object, got ${describe(space)}`)
  const unknown = Object.keys(space).find((k) => !spaceKeys.includes(k))
  if (unknown !== undefined) throw invalidConfig(`space.${unknown}`, `unknown key (allowed: ${spaceKeys.join(', ')})`)
  const d = defaults
  return {
    kind: list('space.kind', space.kind ?? d.kind, (v, f) => checkOneOf(f, v, interventionKinds), String),
    layers: list('space.layers', space.layers ?? d.layers, parseLayerSet, formatLayerSet),
    positions: list('space.positions', space.positions ?? d.positions, (v, f) => {
      if (typeof v !== 'string') throw invalidConfig(f, `expected a string such as 'f1+l1', got ${describe(v)}`)
      const p = parsePositions(v)
      if (p.first === 0 && p.last === 0) throw invalidConfig(f, 'first and last cannot both be 0')
      return formatPositions(p)
    }, String),
    rank: list('space.rank', space.rank ?? d.rank, (v, f) => checkInteger(f, v, { min: 1 }), String),
    lr: list('space.lr', space.lr ?? d.lr, (v, f) => checkNumber(f, v, { above: 0 }), String),
    epochs: list('space.epochs', space.epochs ?? d.epochs, (v, f) => checkInteger(f, v, { min: 1 }), String),
  }
}

/** Number of points in the grid. */
export function gridSize(space: ResolvedSearchSpace): number {
  return searchDimensions.reduce((n, k) => n * space[k].length, 1)
}

/** The grid point with mixed-radix `index` (0 ≤ index < gridSize; `epochs` varies fastest). */
export function configAt(space: ResolvedSearchSpace, index: number): TrialConfig {
  checkInteger('index', index, { min: 0, below: gridSize(space) })
  let rest = index
  const pick = <K extends (typeof searchDimensions)[number]>(k: K): ResolvedSearchSpace[K][number] => {
    const values = space[k]
    const v = values[rest % values.length]!
    rest = Math.floor(rest / values.length)
    return v
  }
  const epochs = pick('epochs')
  const lr = pick('lr')
  const rank = pick('rank')
  const positions = pick('positions')
  const layers = pick('layers')
  const kind = pick('kind')
  return { kind, layers, positions, rank, lr, epochs }
}

/** One line describing a config: `loreft layers=all pos=f3+l3 rank=4 lr=4e-3 epochs=2`. */
export function describeConfig(c: TrialConfig): string {
  return `${c.kind} layers=${formatLayerSet(c.layers)} pos=${c.positions} rank=${c.rank} lr=${c.lr} epochs=${c.epochs}`
}
