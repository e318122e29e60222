/**
 * Node file-system glue of the WebAssembly backend: the module itself has no file system, so
 * model directories, `.gguf` files and adapter checkpoints are read into (and written from)
 * {@link FileRecord}s here. Writes of a checkpoint follow reft-core's `ReftModel::save`: a new
 * directory appears whole (written under a temporary name, then renamed); in an existing one our
 * files are renamed in one by one, the config last.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { ReftError } from '../errors.js'

export type { FileRecord } from './raw.js'
import type { FileRecord } from './raw.js'

/** The files of a checkpoint, in the order they are renamed into an existing directory. */
export const checkpointFiles = ['interventions.safetensors', 'optimizer.safetensors', 'reft_config.json'] as const

const hfFiles = ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json']

function notFound(path: string): ReftError {
  return new ReftError('ERR_IO', `i/o error on ${path}: No such file or directory`)
}

/** Reads the existing files among `names` in `dir`. */
async function readSome(dir: string, names: readonly string[]): Promise<FileRecord> {
  const out: FileRecord = {}
  for (const name of names) {
    const p = join(dir, name)
    if (existsSync(p)) out[name] = new Uint8Array(await readFile(p))
  }
  return out
}

/** The files of an HF model directory (and its safetensors shards) or of one `.gguf` file. */
export async function readModelFiles(path: string): Promise<FileRecord> {
  if (!existsSync(path)) throw notFound(path)
  if (!statSync(path).isDirectory()) {
    if (!path.toLowerCase().endsWith('.gguf')) {
      throw new ReftError('ERR_UNSUPPORTED_MODEL', `unsupported model: ${path}: expected an HF model directory or a .gguf file`)
    }
    return { [basename(path)]: new Uint8Array(await readFile(path)) }
  }
  const files = await readSome(path, hfFiles)
  const index = files['model.safetensors.index.json']
  if (files['model.safetensors'] === undefined && index !== undefined) {
    const map = (JSON.parse(new TextDecoder().decode(index)) as { weight_map?: Record<string, string> }).weight_map ?? {}
    Object.assign(files, await readSome(path, [...new Set(Object.values(map))]))
  }
  return files
}

/**
 * The files of a reft checkpoint directory (`optimizer.safetensors` only when asked for), or of a
 * pyreft adapter directory (`config.json` and its `intkey_*.bin` files).
 */
export async function readCheckpointFiles(dir: string, withOptimizer: boolean): Promise<FileRecord> {
  if (!existsSync(join(dir, 'reft_config.json'))) {
    const intkeys = existsSync(dir) ? readdirSync(dir).filter((f) => /^intkey_.*\.bin$/.test(f)) : []
    if (existsSync(join(dir, 'config.json')) && intkeys.length > 0) return readSome(dir, ['config.json', ...intkeys])
    throw new ReftError('ERR_IO', `${dir} holds neither a reft checkpoint (reft_config.json) nor a pyreft adapter (config.json + intkey_*.bin)`)
  }
  const names = withOptimizer ? checkpointFiles : checkpointFiles.filter((f) => f !== 'optimizer.safetensors')
  return readSome(dir, names)
}

/** Writes `files` into `dir` (created if missing), synchronously as the native addon does. */
export function writeFiles(dir: string, files: FileRecord): void {
  mkdirSync(dir, { recursive: true })
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes)
}

/** Writes a checkpoint's files to `dir` atomically (see the module comment). */
export function writeCheckpoint(dir: string, files: FileRecord): void {
  const parent = dirname(dir)
  mkdirSync(parent, { recursive: true })
  const tmp = join(parent, `.${basename(dir)}.tmp-${process.pid}`)
  rmSync(tmp, { recursive: true, force: true })
  writeFiles(tmp, files)
  if (!existsSync(dir)) {
    renameSync(tmp, dir)
    return
  }
  for (const name of checkpointFiles) {
    if (files[name] !== undefined) renameSync(join(tmp, name), join(dir, name))
    else if (name === 'optimizer.safetensors') rmSync(join(dir, name), { force: true })
  }
  rmSync(tmp, { recursive: true, force: true })
}

/** reft-core's cache directory: `$REFT_CACHE`, else `$XDG_CACHE_HOME/reft`, else `~/.cache/reft`. */
export function cacheDir(): string {
  const env = process.env
  if (env.REFT_CACHE) return env.REFT_CACHE
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'reft')
  return join(env.HOME ?? (homedir() || tmpdir()), '.cache', 'reft')
}
