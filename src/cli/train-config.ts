/**
 * The run configuration of `reft train`: a JSON file (`--config run.json`) merged with flags
 * (flags win). Unknown keys at any level are ERR_INVALID_CONFIG; values are type-checked here and
 * range-checked by `resolveConfig` / `resolveTrainOptions` when the run starts.
 *
 * ```json
 * { "model": "path", "data": "train.jsonl", "output": "reft-adapter", "chat": false, "format": "raw",
 *   "limit": 100, "maxLength": 512, "seed": 42, "resume": "reft-adapter/checkpoint-30",
 *   "intervention": { "kind": "loreft", "layers": [15], "positions": "l1", "rank": 4, "tied": true },
 *   "train": { "epochs": 3, "batchSize": 4, "gradientAccumulation": 1, "lr": 4e-3, "warmupRatio": 0,
 *              "weightDecay": 0, "maxGradNorm": 1, "checkpointEvery": 50 } }
 * ```
 */
import { readFile } from 'node:fs/promises'
import type { BaseInterventionConfig, InterventionKind } from '../config.js'
import { ReftError, invalidConfig } from '../errors.js'
import { checkBoolean, checkInteger, checkOneOf, describe } from '../validate.js'
import { int, num, placement, str, type Parsed } from './common.js'

/** Prompt formats the CLI accepts (`--chat` selects the model's chat template instead). */
export const cliFormats = ['raw', 'alpaca', 'no_header'] as const
export type CliFormat = (typeof cliFormats)[number]

/** The training options a run config may set (a JSON-able subset of `TrainOptions`). */
export interface RunTrainOptions {
  epochs?: number
  batchSize?: number
  gradientAccumulation?: number
  lr?: number
  warmupSteps?: number
  warmupRatio?: number
  weightDecay?: number
  maxGradNorm?: number
  seed?: number
  checkpointEvery?: number
  groupByLength?: boolean
  recompute?: boolean
}

/** A merged run configuration. `intervention.layers` unset means the model's middle layer. */
export interface RunConfig {
  model?: string
  /** `--device`: where the model runs (default cpu). */
  device?: 'cpu' | 'cuda'
  /** `--dtype`: the frozen model's dtype (default f32). */
  dtype?: 'f32' | 'bf16' | 'f16'
  data?: string
  output: string
  chat: boolean
  format: CliFormat
  limit?: number
  maxLength?: number
  seed: number
  resume?: string
  intervention: Partial<BaseInterventionConfig> & { kind: InterventionKind }
  train: RunTrainOptions
}

const topKeys = ['model', 'device', 'dtype', 'data', 'output', 'chat', 'format', 'limit', 'maxLength', 'seed', 'resume', 'intervention', 'train']
const devices = ['cpu', 'cuda'] as const
const dtypes = ['f32', 'bf16', 'f16'] as const
const interventionKeys = ['kind', 'layers', 'component', 'positions', 'rank', 'tied', 'dropout', 'activation', 'addBias']
const trainKeys = ['epochs', 'batchSize', 'gradientAccumulation', 'lr', 'warmupSteps', 'warmupRatio', 'weightDecay', 'maxGradNorm', 'seed', 'checkpointEvery', 'groupByLength', 'recompute']

function object(value: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidConfig(field, `expected an object, got ${describe(value)}`)
  const unknown = Object.keys(value).find((k) => !allowed.includes(k))
  if (unknown !== undefined) throw invalidConfig(`${field}.${unknown}`, `unknown key (allowed: ${allowed.join(', ')})`)
  return value as Record<string, unknown>
}

function optString(v: unknown, field: string): string | undefined {
  if (v !== undefined && typeof v !== 'string') throw invalidConfig(field, `expected a string, got ${describe(v)}`)
  return v
}

/** Validates the parsed JSON of a config file (keys and top-level types). */
export function checkConfigFile(json: unknown): Partial<RunConfig> {
  const c = object(json, 'config', topKeys)
  const out: Partial<RunConfig> = {
    model: optString(c.model, 'config.model'),
    data: optString(c.data, 'config.data'),
    output: optString(c.output, 'config.output'),
    resume: optString(c.resume, 'config.resume'),
  }
  if (c.device !== undefined) out.device = checkOneOf('config.device', c.device, devices)
  if (c.dtype !== undefined) out.dtype = checkOneOf('config.dtype', c.dtype, dtypes)
  if (c.chat !== undefined) out.chat = checkBoolean('config.chat', c.chat)
  if (c.format !== undefined) out.format = checkOneOf('config.format', c.format, cliFormats)
  if (c.limit !== undefined) out.limit = checkInteger('config.limit', c.limit, { min: 1 })
  if (c.maxLength !== undefined) out.maxLength = checkInteger('config.maxLength', c.maxLength, { min: 2 })
  if (c.seed !== undefined) out.seed = checkInteger('config.seed', c.seed)
  if (c.intervention !== undefined) out.intervention = object(c.intervention, 'config.intervention', interventionKeys) as RunConfig['intervention']
  if (c.train !== undefined) out.train = object(c.train, 'config.train', trainKeys) as RunTrainOptions
  return out
}

/** Reads a config file (ERR_IO when unreadable, ERR_INVALID_CONFIG when not JSON or malformed). */
export async function readConfigFile(file: string): Promise<Partial<RunConfig>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new ReftError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new ReftError('ERR_INVALID_CONFIG', `${file} is not valid JSON: ${(e as Error).message}`, { cause: e })
  }
  return checkConfigFile(json)
}

/** `--layers 15` / `3,9` / `all`. */
export function parseLayers(text: string): number[] | 'all' {
  if (text.trim() === 'all') return 'all'
  const parts = text.split(',').map((s) => s.trim())
  if (parts.some((s) => !/^\d+$/.test(s))) throw invalidConfig('--layers', `expected 'all' or comma-separated layer indices, got ${JSON.stringify(text)}`)
  return parts.map(Number)
}

const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>

/** Merges a config file (may be empty) with parsed `reft train` flags; flags win. */
export function mergeRunConfig(file: Partial<RunConfig>, p: Parsed): RunConfig {
  if (p.values.tied === true && p.values['no-tied'] === true) throw invalidConfig('--tied', 'give --tied or --no-tied, not both')
  const tied = p.values.tied === true ? true : p.values['no-tied'] === true ? false : undefined
  const layers = str(p, 'layers')
  const intervention = {
    kind: 'loreft' as InterventionKind,
    positions: 'l1',
    rank: 4,
    ...file.intervention,
    ...defined({
      kind: str(p, 'kind') as InterventionKind | undefined,
      layers: layers === undefined ? undefined : parseLayers(layers),
      component: str(p, 'component') as BaseInterventionConfig['component'],
      positions: str(p, 'positions'),
      rank: int(p, 'rank'),
      tied,
      dropout: num(p, 'dropout'),
    }),
  }
  const train: RunTrainOptions = {
    ...file.train,
    ...defined({
      epochs: int(p, 'epochs'),
      batchSize: int(p, 'batch-size'),
      gradientAccumulation: int(p, 'grad-accum'),
      lr: num(p, 'lr'),
      warmupRatio: num(p, 'warmup-ratio'),
      weightDecay: num(p, 'weight-decay'),
      checkpointEvery: int(p, 'checkpoint-every'),
      groupByLength: p.values['group-by-length'] === true ? true : undefined,
      recompute: p.values.recompute === true ? true : undefined,
    }),
  }
  const format = str(p, 'format') ?? file.format ?? 'raw'
  const limit = int(p, 'limit') ?? file.limit
  const chat = p.values.chat === true || (file.chat ?? false)
  if (chat && format !== 'raw') throw invalidConfig('--format', '--chat uses the chat template; drop --format')
  return {
    model: str(p, 'model') ?? file.model,
    device: placement(p).device ?? file.device,
    dtype: placement(p).dtype ?? file.dtype,
    data: str(p, 'data') ?? file.data,
    output: str(p, 'output') ?? file.output ?? 'reft-adapter',
    chat,
    format: checkOneOf('--format', format, cliFormats),
    limit: limit === undefined ? undefined : checkInteger('--limit', limit, { min: 1 }),
    maxLength: int(p, 'max-length') ?? file.maxLength,
    seed: int(p, 'seed') ?? file.seed ?? 42,
    resume: str(p, 'resume') ?? file.resume,
    intervention,
    train,
  }
}
