/**
 * What the browser entry accepts as a model or an adapter, turned into in-memory files (file name
 * → bytes): picked files (`<input type=file multiple>`, a folder's `FileList`), one `.gguf` as a
 * `Blob`/`File`/bytes, a `FileRecord`, or a URL (a `.gguf`, or a directory whose files are fetched
 * by name).
 */
import { ReftError } from '../errors.js'
import type { FileRecord } from '../wasm/raw.js'

/** The DOM's `FileList` (an `<input type=file>`'s `files`), structurally. */
export interface FileListLike {
  readonly length: number
  item(index: number): Blob | null
  readonly [index: number]: Blob
}

/** A model or adapter source; see the module comment. */
export type FileSource = FileRecord | Uint8Array | ArrayBuffer | Blob | readonly Blob[] | FileListLike | URL | string

function isFileList(x: unknown): x is FileListLike {
  return typeof x === 'object' && x !== null && typeof (x as FileListLike).item === 'function' && typeof (x as FileListLike).length === 'number'
}

/** Files read from a source, and a name for where they came from. */
export interface ReadSource {
  files: FileRecord
  where: string
}

const modelFiles = { required: ['config.json', 'tokenizer.json'], optional: ['tokenizer_config.json'] }
const adapterFiles = { required: ['reft_config.json', 'interventions.safetensors'], optional: [] as string[] }

function isFileRecord(x: unknown): x is FileRecord {
  return typeof x === 'object' && x !== null && Object.getPrototypeOf(x) === Object.prototype && Object.values(x).every((v) => v instanceof Uint8Array)
}

async function fetchBytes(url: URL, required: boolean): Promise<Uint8Array | undefined> {
  let res: Response
  try {
    res = await fetch(url)
  } catch (e) {
    throw new ReftError('ERR_IO', `cannot fetch ${url.href}: ${(e as Error).message}`, { cause: e })
  }
  if (!res.ok) {
    if (!required && res.status === 404) return undefined
    throw new ReftError('ERR_IO', `cannot fetch ${url.href}: HTTP ${res.status}`)
  }
  return new Uint8Array(await res.arrayBuffer())
}

async function fetchModelDir(base: URL): Promise<FileRecord> {
  const files: FileRecord = {}
  for (const name of modelFiles.required) files[name] = (await fetchBytes(new URL(name, base), true))!
  for (const name of modelFiles.optional) {
    const b = await fetchBytes(new URL(name, base), false)
    if (b !== undefined) files[name] = b
  }
  const single = await fetchBytes(new URL('model.safetensors', base), false)
  if (single !== undefined) files['model.safetensors'] = single
  else {
    const index = (await fetchBytes(new URL('model.safetensors.index.json', base), false))
    if (index === undefined) throw new ReftError('ERR_IO', `${base.href} has neither model.safetensors nor model.safetensors.index.json`)
    files['model.safetensors.index.json'] = index
    const map = (JSON.parse(new TextDecoder().decode(index)) as { weight_map?: Record<string, string> }).weight_map ?? {}
    for (const shard of new Set(Object.values(map))) files[shard] = (await fetchBytes(new URL(shard, base), true))!
  }
  return files
}

/**
 * A reft checkpoint's files at `base`, or, when it has no `reft_config.json`, a pyreft adapter's:
 * `config.json` and the `intkey_<key>.bin` of each key its `sorted_keys` lists (a URL cannot be
 * listed, so the config names them).
 */
async function fetchAdapterDir(base: URL, withOptimizer: boolean): Promise<FileRecord> {
  const files: FileRecord = {}
  const config = await fetchBytes(new URL(adapterFiles.required[0]!, base), false)
  if (config === undefined) return fetchPyreftDir(base)
  files[adapterFiles.required[0]!] = config
  for (const name of adapterFiles.required.slice(1)) files[name] = (await fetchBytes(new URL(name, base), true))!
  if (withOptimizer) files['optimizer.safetensors'] = (await fetchBytes(new URL('optimizer.safetensors', base), true))!
  return files
}

async function fetchPyreftDir(base: URL): Promise<FileRecord> {
  const config = await fetchBytes(new URL('config.json', base), false)
  if (config === undefined) {
    throw new ReftError('ERR_IO', `${base.href} holds neither a reft checkpoint (reft_config.json) nor a pyreft adapter (config.json + intkey_*.bin)`)
  }
  let keys: unknown
  try {
    keys = (JSON.parse(new TextDecoder().decode(config)) as { sorted_keys?: unknown }).sorted_keys
  } catch (e) {
    throw new ReftError('ERR_FORMAT', `${base.href}config.json: not JSON: ${(e as Error).message}`, { cause: e })
  }
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
    throw new ReftError('ERR_FORMAT', `${base.href}config.json: no \`sorted_keys\` list of strings: not a pyreft adapter`)
  }
  const files: FileRecord = { 'config.json': config }
  for (const key of keys as string[]) {
    const name = `intkey_${key}.bin`
    files[name] = (await fetchBytes(new URL(encodeURIComponent(name), base), true))!
  }
  return files
}

function toUrl(x: URL | string): URL {
  try {
    return x instanceof URL ? x : new URL(x, (globalThis as { location?: { href: string } }).location?.href)
  } catch (e) {
    throw new ReftError('ERR_IO', `not a URL: ${String(x)}`, { cause: e })
  }
}

/** A directory URL ends in `/`, so relative file names resolve inside it. */
function asDir(url: URL): URL {
  return url.pathname.endsWith('/') ? url : new URL(`${url.pathname}/${url.search}`, url)
}

async function readBlobs(blobs: readonly Blob[]): Promise<FileRecord> {
  const files: FileRecord = {}
  for (const [i, blob] of blobs.entries()) {
    const name = 'name' in blob && typeof blob.name === 'string' && blob.name !== '' ? blob.name : blobs.length === 1 ? 'model.gguf' : `file-${i}`
    files[name] = new Uint8Array(await blob.arrayBuffer())
  }
  return files
}

/** Reads a model source: one `.gguf`, or an HF directory's files. */
export async function readModelSource(source: FileSource): Promise<ReadSource> {
  return readSource(source, (url) => (url.pathname.toLowerCase().endsWith('.gguf') ? fetchGguf(url) : fetchModelDir(asDir(url))), 'model.gguf')
}

/** Reads an adapter source: a reft checkpoint's files, or a pyreft adapter's. */
export async function readAdapterSource(source: FileSource, withOptimizer: boolean): Promise<ReadSource> {
  return readSource(source, (url) => fetchAdapterDir(asDir(url), withOptimizer), undefined)
}

async function fetchGguf(url: URL): Promise<FileRecord> {
  const name = decodeURIComponent(url.pathname.split('/').pop() ?? 'model.gguf')
  return { [name]: (await fetchBytes(url, true))! }
}

async function readSource(source: FileSource, fromUrl: (url: URL) => Promise<FileRecord>, bytesName: string | undefined): Promise<ReadSource> {
  const bytes = (b: Uint8Array): ReadSource => {
    if (bytesName === undefined) throw new ReftError('ERR_INVALID_CONFIG', 'invalid config: source: an adapter is several files; pass them as File[] / FileList / a FileRecord')
    return { files: { [bytesName]: b }, where: bytesName }
  }
  if (source instanceof Uint8Array) return bytes(source)
  if (source instanceof ArrayBuffer) return bytes(new Uint8Array(source))
  if (typeof source === 'string' || source instanceof URL) {
    const url = toUrl(source)
    return { files: await fromUrl(url), where: url.href }
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    const files = await readBlobs([source])
    return { files, where: Object.keys(files).join(', ') }
  }
  if (Array.isArray(source) || isFileList(source)) {
    const list = Array.from(source as ArrayLike<Blob>)
    if (list.length === 0) throw new ReftError('ERR_IO', 'no files given')
    const files = await readBlobs(list)
    return { files, where: Object.keys(files).join(', ') }
  }
  if (isFileRecord(source)) return { files: source, where: Object.keys(source).join(', ') || '(no files)' }
  throw new ReftError('ERR_INVALID_CONFIG', 'invalid config: source: expected files (File[], FileList, Blob, bytes, { name: bytes }) or a URL')
}
