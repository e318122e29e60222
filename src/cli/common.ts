/**
 * Shared pieces of the `reft` command line: argument parsing on top of `node:util` `parseArgs`
 * (its errors become ERR_INVALID_CONFIG), numeric flag conversion, model loading and the
 * `CliExit` signal a command uses to end with a specific exit status.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { invalidConfig } from '../errors.js'
import { ensureDefaultModel } from '../fetch-model.js'
import { loadModel } from '../load-model.js'
import type { Model } from '../model.js'
import { checkOneOf } from '../validate.js'

/** Output streams of one CLI run (injectable so the commands stay testable). */
export interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
}

/** Ends a command with `status` after printing `message` to stderr (e.g. `reft eval` → 2). */
export class CliExit extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
    this.name = 'CliExit'
  }
}

type Options = NonNullable<ParseArgsConfig['options']>

/** Parsed flags: string / boolean values by option name, plus positionals. */
export interface Parsed {
  values: Record<string, string | boolean | undefined>
  positionals: string[]
}

/** `parseArgs` in strict mode; unknown flags or missing values throw ERR_INVALID_CONFIG. */
export function parseFlags(args: string[], options: Options, allowPositionals: boolean): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals, strict: true })
    return { values: values as Parsed['values'], positionals }
  } catch (e) {
    throw invalidConfig('arguments', (e as Error).message)
  }
}

/** A string flag or `undefined`. */
export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name]
  return typeof v === 'string' ? v : undefined
}

/** A numeric flag (`--lr 4e-3`) or `undefined`; non-numbers are ERR_INVALID_CONFIG naming the flag. */
export function num(p: Parsed, name: string): number | undefined {
  const v = str(p, name)
  if (v === undefined) return undefined
  const n = Number(v)
  if (v.trim() === '' || !Number.isFinite(n)) throw invalidConfig(`--${name}`, `expected a number, got ${JSON.stringify(v)}`)
  return n
}

/** An integer flag or `undefined`. */
export function int(p: Parsed, name: string): number | undefined {
  const n = num(p, name)
  if (n !== undefined && !Number.isInteger(n)) throw invalidConfig(`--${name}`, `expected an integer, got ${n}`)
  return n
}

/** Where and in which dtype a command loads its model (`--device`, `--dtype`). */
export interface ModelPlacement {
  device?: 'cpu' | 'cuda'
  dtype?: 'f32' | 'bf16' | 'f16'
}

/** The `--device` / `--dtype` flags shared by the commands that load a model. */
export const placementFlags = { device: { type: 'string' }, dtype: { type: 'string' } } as const

/** Help lines of {@link placementFlags}. */
export const placementHelp = `  --device D             cpu | cuda (CUDA needs the CUDA build of the addon; default cpu)
  --dtype T              f32 | bf16 | f16: the frozen model's weights and activations (default f32;
                         interventions stay f32; bf16/f16 are for GPUs, slower than f32 on a CPU)
`

/** The parsed `--device` / `--dtype` flags (ERR_INVALID_CONFIG for other values). */
export function placement(p: Parsed): ModelPlacement {
  const device = str(p, 'device')
  const dtype = str(p, 'dtype')
  return {
    device: device === undefined ? undefined : checkOneOf('--device', device, ['cpu', 'cuda'] as const),
    dtype: dtype === undefined ? undefined : checkOneOf('--dtype', dtype, ['f32', 'bf16', 'f16'] as const),
  }
}

/** Loads `path` (a directory, `.gguf`, `hf:org/name`), or the default model when omitted. */
export async function openModel(path: string | undefined, io: CliIo, where: ModelPlacement = {}): Promise<Model> {
  return loadModel(path ?? (await ensureDefaultModel((line) => io.err(`${line}\n`))), { device: where.device, dtype: where.dtype })
}
