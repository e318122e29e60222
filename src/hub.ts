/**
 * `hf:org/name[@revision]` downloads from the Hugging Face hub (or `$HF_ENDPOINT`) into the reft
 * cache: config.json, tokenizer files and safetensors weights (single or sharded). Files are
 * written to `*.partial` and renamed, so an interrupted download is never mistaken for a file.
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
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
  await writeFile(`${dest}.partial`, new Uint8Array(await res.arrayBuffer()))
  await rename(`${dest}.partial`, dest)
  return true
}

/** Downloads `org/name[@revision]` and returns the local directory. */
export async function downloadFromHub(spec: string, options: HubOptions = {}): Promise<string> {
  const m = /^([\w.-]+\/[\w.-]+)(?:@([\w./-]+))?$/.exec(spec)
  if (m === null) throw new ReftError('ERR_INVALID_CONFIG', `hf: spec \`${spec}\` is not org/name[@revision]`)
  const [, repo, rev = 'main'] = m
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '')
  const token = options.token ?? process.env.HF_TOKEN
  const dir = join(cacheRoot(options), 'hub', repo!.replace('/', '--'), rev)
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
    const weightMap = (JSON.parse(await readFile(index, 'utf8')) as { weight_map?: Record<string, string> }).weight_map ?? {}
    for (const shard of new Set(Object.values(weightMap))) {
      await fetchFile(url(shard), join(dir, shard), token, false)
    }
  }
  return dir
}
