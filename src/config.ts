/**
 * Public intervention configuration and its expansion into native per-site specs.
 *
 * One `InterventionConfig` describes the same intervention applied to several layers at the
 * prefix/suffix positions `{ first, last }` (pyreft's `"f<first>+l<last>"`). `expandConfig` turns it
 * into the flat list of `NativeInterventionSpec`s the native side builds, in pyreft order: when the
 * weights are untied and both `first` and `last` are non-zero there are two interventions per layer,
 * listed as `layers ++ layers` (first half ↔ prefix positions, second half ↔ suffix positions).
 */
import { invalidConfig, outOfRange } from './errors.js'
import type { NativeInterventionSpec } from './native-api.js'
import { checkBoolean, checkInteger, checkNumber, checkOneOf, describe } from './validate.js'

/** Intervention methods (pyreft class names, lowercased without the `Intervention` suffix). */
export type InterventionKind = 'loreft' | 'direft' | 'direft_orth' | 'noreft' | 'consreft' | 'lobireft'

/** Where in a decoder block the intervention reads and writes the hidden state. */
export type Component = 'block_output' | 'block_input' | 'attention_output' | 'mlp_output'

/** Activation applied to `Wh + b` (pyreft `act_fn`). */
export type Activation = 'linear' | 'relu' | 'gelu' | 'silu' | 'tanh'

/** Number of prefix (`first`) and suffix (`last`) prompt positions to intervene on. */
export interface Positions {
  /** Prefix positions 0 … first−1. */
  first: number
  /** Suffix positions (the last `last` prompt tokens). */
  last: number
}

/** Fields shared by every intervention kind. */
export interface BaseInterventionConfig {
  /** Layer indices (0-based), or `'all'` for every layer of the model. */
  layers: number[] | 'all'
  /**
   * Hook site inside each block.
   * @defaultValue `'block_output'`
   */
  component?: Component
  /** Prefix/suffix positions, as an object or a pyreft string such as `'f7+l7'`. */
  positions: Positions | string
  /** Low-rank dimension r (pyreft `low_rank_dimension`); an integer >= 1. */
  rank: number
  /**
   * Share one intervention between prefix and suffix positions (pyreft `share_weights`).
   * @defaultValue `true`
   */
  tied?: boolean
  /**
   * Dropout probability on the edited vector during training, in [0, 1).
   * @defaultValue `0`
   */
  dropout?: number
  /**
   * Activation on `Wh + b`.
   * @defaultValue `'linear'`
   */
  activation?: Activation
  /**
   * Give the projection a bias (pyreft `add_bias`; meaningful for noreft / direft).
   * @defaultValue `false`
   */
  addBias?: boolean
}

/** An intervention config, discriminated on `kind`. */
export type InterventionConfig = {
  [K in InterventionKind]: BaseInterventionConfig & { kind: K }
}[InterventionKind]

/** Every accepted `kind`. */
export const interventionKinds: readonly InterventionKind[] = [
  'loreft',
  'direft',
  'direft_orth',
  'noreft',
  'consreft',
  'lobireft',
]

/** Every accepted `component`. */
export const components: readonly Component[] = ['block_output', 'block_input', 'attention_output', 'mlp_output']

/** Every accepted `activation`. */
export const activations: readonly Activation[] = ['linear', 'relu', 'gelu', 'silu', 'tanh']

/** Defaults for the optional config fields (one place, as documented on each field). */
export const defaults = {
  component: 'block_output',
  tied: true,
  dropout: 0,
  activation: 'linear',
  addBias: false,
} as const satisfies Required<Pick<BaseInterventionConfig, 'component' | 'tied' | 'dropout' | 'activation' | 'addBias'>>

/** A validated config with defaults filled in, layers resolved and positions parsed. */
export interface ResolvedInterventionConfig {
  kind: InterventionKind
  layers: number[]
  component: Component
  positions: Positions
  rank: number
  tied: boolean
  dropout: number
  activation: Activation
  addBias: boolean
  /** pyreft `share_weights` for `getInterventionLocations` (equals `tied`). */
  shareWeights: boolean
  /** Interventions per layer: 2 when untied with both first and last > 0, else 1. */
  perLayer: 1 | 2
  /** Total number of interventions (= first dimension of the locations). */
  numInterventions: number
}

const positionPattern = /^(?:f(\d+)\+l(\d+)|f(\d+)|l(\d+))$/

/**
 * Parse a pyreft position string: `'f7+l7'` → `{first: 7, last: 7}`, `'f3'` → `{first: 3, last: 0}`,
 * `'l1'` → `{first: 0, last: 1}`. Anything else throws ERR_INVALID_CONFIG.
 */
export function parsePositions(text: string): Positions {
  const m = typeof text === 'string' ? positionPattern.exec(text.trim()) : null
  if (m === null) {
    throw invalidConfig('positions', `expected 'f<n>+l<m>', 'f<n>' or 'l<m>', got ${describe(text)}`)
  }
  const int = (s: string | undefined): number => (s === undefined ? 0 : Number.parseInt(s, 10))
  if (m[1] !== undefined) return { first: int(m[1]), last: int(m[2]) }
  return { first: int(m[3]), last: int(m[4]) }
}

/** Validate a positions value (object or string) and return the object form. */
export function resolvePositions(positions: Positions | string): Positions {
  const p = typeof positions === 'string' ? parsePositions(positions) : positions
  if (typeof p !== 'object' || p === null) {
    throw invalidConfig('positions', `expected an object {first, last} or a string, got ${describe(positions)}`)
  }
  const first = checkInteger('positions.first', p.first, { min: 0 })
  const last = checkInteger('positions.last', p.last, { min: 0 })
  if (first === 0 && last === 0) throw invalidConfig('positions', 'first and last cannot both be 0')
  return { first, last }
}

/** Validate `cfg` against a model with `numLayers` layers and fill in defaults. */
export function resolveConfig(cfg: InterventionConfig, numLayers: number): ResolvedInterventionConfig {
  checkInteger('numLayers', numLayers, { min: 1 })
  if (typeof cfg !== 'object' || cfg === null) throw invalidConfig('config', `expected an object, got ${describe(cfg)}`)
  const kind = checkOneOf('kind', cfg.kind, interventionKinds)
  const layers = resolveLayers(cfg.layers, numLayers)
  const component = checkOneOf('component', cfg.component ?? defaults.component, components)
  const positions = resolvePositions(cfg.positions)
  const rank = checkInteger('rank', cfg.rank, { min: 1 })
  const tied = checkBoolean('tied', cfg.tied ?? defaults.tied)
  const dropout = checkNumber('dropout', cfg.dropout ?? defaults.dropout, { min: 0, below: 1 })
  const activation = checkOneOf('activation', cfg.activation ?? defaults.activation, activations)
  const addBias = checkBoolean('addBias', cfg.addBias ?? defaults.addBias)
  const perLayer = !tied && positions.first > 0 && positions.last > 0 ? 2 : 1
  return {
    kind,
    layers,
    component,
    positions,
    rank,
    tied,
    dropout,
    activation,
    addBias,
    shareWeights: tied,
    perLayer,
    numInterventions: layers.length * perLayer,
  }
}

function resolveLayers(layers: unknown, numLayers: number): number[] {
  if (layers === 'all') return Array.from({ length: numLayers }, (_, i) => i)
  if (!Array.isArray(layers)) throw invalidConfig('layers', `expected an array of integers or 'all', got ${describe(layers)}`)
  if (layers.length === 0) throw invalidConfig('layers', 'must not be empty')
  const seen = new Set<number>()
  layers.forEach((layer: unknown, i) => {
    const field = `layers[${i}]`
    if (typeof layer !== 'number' || !Number.isInteger(layer)) {
      throw invalidConfig(field, `expected an integer, got ${describe(layer)}`)
    }
    if (layer < 0 || layer >= numLayers) throw outOfRange(field, `layer ${layer} is outside 0..${numLayers - 1}`)
    if (seen.has(layer)) throw invalidConfig(field, `layer ${layer} is listed twice (untied prefix/suffix pairs are added by tied: false)`)
    seen.add(layer)
  })
  return [...(layers as number[])]
}

/**
 * Expand one config into native per-site specs, in pyreft order. Tied (or only one of
 * first/last): one spec per layer. Untied with first > 0 and last > 0: `layers` then `layers` again.
 */
export function expandConfig(cfg: InterventionConfig, numLayers: number): NativeInterventionSpec[] {
  const r = resolveConfig(cfg, numLayers)
  const order = r.perLayer === 2 ? [...r.layers, ...r.layers] : r.layers
  return order.map((layer) => ({
    kind: r.kind,
    layer,
    component: r.component,
    rank: r.rank,
    dropout: r.dropout,
    activation: r.activation,
    addBias: r.addBias,
  }))
}
