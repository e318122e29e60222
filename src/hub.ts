/**
 * `hf:org/name[@revision]` downloads from the Hugging Face hub (or `$HF_ENDPOINT`) into the reft
 * cache: config.json, tokenizer files and safetensors weights (single or sharded). Files are
 * written to `*.partial` and renamed, so an interrupted download is never mistaken for a file.
 * A finished download is marked with `.reft-complete`; later calls return the cached directory
 * without touching the network (so a cached model loads offline).
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { ReftError } from './errors.js'

/** Options of {@link downloadFromHub}. */
export interface HubOptions {
  /** @defaultValue `$REFT_CACHE` or `~/.cache/reft` */
  cacheDir?: string
  /** @defaultValue `$HF_ENDPOINT` or `https://huggingface.co` */
  endpoint?: string
  /** @defaultValue `$HF_TOKEN` */
  token?: string
}

/** Written into a cache directory once every file of the download is there. */
const completeMarker = '.reft-complete'

function cacheRoot(o: HubOptions): string {
  return o.cacheDir ?? process.env.REFT_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'reft')
}

async function fetchFile(url: string, dest: string, token: string | undefined, optional: boolean): Promise<boolean> {
  if (existsSync(dest)) return true
  let res: Response
  try {
    res = await fetch(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  } catch (e) {
    throw new ReftError('ERR_IO', `cannot reach ${url} (no network?): ${(e as Error).message}`, { cause: e })
  }
  if (res.status === 404 && optional) return false
  if (!res.ok) throw new ReftError('ERR_IO', `GET ${url}: HTTP ${res.status}`)
  try {
    await writeFile(`${dest}.partial`, new Uint8Array(await res.arrayBuffer()))
    await rename(`${dest}.partial`, dest)
  } catch (e) {
    throw new ReftError('ERR_IO', `cannot download ${url} to ${dest}: ${(e as Error).message}`, { cause: e })
  }
  return true
}

/** Downloads `org/name[@revision]` and returns the local directory. */
export async function downloadFromHub(spec: string, options: HubOptions = {}): Promise<string> {
  const m = /^([\w.-]+\/[\w.-]+)(?:@([\w./-]+))?$/.exec(spec)
  if (m === null) throw new ReftError('ERR_INVALID_CONFIG', `hf: spec \`${spec}\` is not org/name[@revision]`)
  const [, repo, rev = 'main'] = m
  if (rev.split('/').includes('..')) throw new ReftError('ERR_INVALID_CONFIG', `hf: spec \`${spec}\`: revision must not contain '..'`)
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '')
  const token = options.token ?? process.env.HF_TOKEN
  const dir = join(cacheRoot(options), 'hub', repo!.replace('/', '--'), rev)
  const complete = join(dir, completeMarker)
  if (existsSync(complete)) return dir
  await mkdir(dir, { recursive: true })
  const url = (f: string) => `${endpoint}/${repo}/resolve/${rev}/${f}`
  await fetchFile(url('config.json'), join(dir, 'config.json'), token, false)
  await fetchFile(url('tokenizer.json'), join(dir, 'tokenizer.json'), token, true)
  await fetchFile(url('tokenizer_config.json'), join(dir, 'tokenizer_config.json'), token, true)
  if (!(await fetchFile(url('model.safetensors'), join(dir, 'model.safetensors'), token, true))) {
    const index = join(dir, 'model.safetensors.index.json')
    if (!(await fetchFile(url('model.safetensors.index.json'), index, token, true))) {
      throw new ReftError('ERR_IO', `${repo}@${rev} has neither model.safetensors nor model.safetensors.index.json`)
    }
    let weightMap: Record<string, unknown>
    try {
      weightMap = (JSON.parse(await readFile(index, 'utf8')) as { weight_map?: Record<string, unknown> }).weight_map ?? {}
    } catch (e) {
      await rm(index, { force: true })
      throw new ReftError('ERR_FORMAT', `${repo}@${rev}: model.safetensors.index.json is not valid JSON`, { cause: e })
    }
    for (const shard of new Set(Object.values(weightMap))) {
      // Shard names come from the remote index: never let one point outside the cache directory.
      if (typeof shard !== 'string' || isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
        throw new ReftError('ERR_FORMAT', `${repo}@${rev}: model.safetensors.index.json names an unsafe shard path ${JSON.stringify(shard)}`)
      }
      await fetchFile(url(shard), join(dir, shard), token, false)
    }
  }
  await writeFile(complete, `${new Date().toISOString()}\n`)
  return dir
}
