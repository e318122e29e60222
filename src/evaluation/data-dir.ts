/**
 * Where the paper's data lives and how it is read: `options.dataDir`, else `$REFT_DATA_DIR`, else
 * `../shared/data` relative to the working directory when that exists. Files are JSON arrays or
 * JSON Lines (the data README names a few `.jsonl` files that hold one object per line).
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ReftError } from '../errors.js'

/** Options naming the data directory. */
export interface DataDirOptions {
  /** Root of the data tree (`commonsense/`, `math/`, `instruct/`). @defaultValue `$REFT_DATA_DIR`, else `../shared/data` when it exists */
  dataDir?: string
}

/** The fallback location, relative to the working directory. */
export const defaultDataDir = '../shared/data'

const layout =
  'It should hold the LLM-Adapters layout: commonsense/<task>/test.json, math/<task>/test.json, math/train/, instruct/ ' +
  '(see docs: pyreft examples/loreft/load_datasets.sh clones AGI-Edgerunners/LLM-Adapters, whose dataset/ folder has these files)'

/**
 * The data directory as an absolute path. Throws ERR_IO when the chosen directory does not exist,
 * naming where it looked and what belongs there.
 */
export function resolveDataDir(options: DataDirOptions = {}): string {
  const given = options.dataDir ?? (process.env.REFT_DATA_DIR === '' ? undefined : process.env.REFT_DATA_DIR)
  if (given !== undefined) {
    const dir = resolve(given)
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      const via = options.dataDir !== undefined ? 'dataDir' : 'REFT_DATA_DIR'
      throw new ReftError('ERR_IO', `data directory ${dir} (from ${via}) does not exist. ${layout}`)
    }
    return dir
  }
  const fallback = resolve(defaultDataDir)
  if (existsSync(fallback) && statSync(fallback).isDirectory()) return fallback
  throw new ReftError(
    'ERR_IO',
    `no data directory: pass dataDir (--data-dir), set REFT_DATA_DIR, or create ${fallback}. ${layout}`,
  )
}

/** Parses JSON (one array) or JSON Lines text; `name` is used in error messages. */
export function parseRecords(text: string, name: string): Record<string, unknown>[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  const trimmed = body.trimStart()
  let rows: unknown[]
  if (trimmed.startsWith('[')) {
    try {
      rows = JSON.parse(trimmed) as unknown[]
    } catch (e) {
      throw new ReftError('ERR_FORMAT', `${name}: not valid JSON: ${(e as Error).message}`, { cause: e })
    }
  } else {
    rows = []
    const lines = body.split('\n')
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim()
      if (line === '') continue
      try {
        rows.push(JSON.parse(line))
      } catch (e) {
        throw new ReftError('ERR_FORMAT', `${name}:${i + 1}: not valid JSON: ${(e as Error).message}`, { cause: e })
      }
    }
  }
  rows.forEach((r, i) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new ReftError('ERR_FORMAT', `${name}: record ${i} is not an object`)
  })
  return rows as Record<string, unknown>[]
}

/**
 * Reads `relPath` under the data directory. A missing file is ERR_IO naming the expected path and
 * `hint` (what to put there).
 */
export function readDataFile(relPath: string, hint: string, options: DataDirOptions = {}): Record<string, unknown>[] {
  const dir = resolveDataDir(options)
  const path = join(dir, relPath)
  if (!existsSync(path)) throw new ReftError('ERR_IO', `missing data file ${path}: ${hint}`)
  return parseRecords(readFileSync(path, 'utf8'), path)
}

/** A string field of a record; anything else is ERR_FORMAT. */
export function stringField(record: Record<string, unknown>, field: string, where: string): string {
  const v = record[field]
  if (typeof v !== 'string') throw new ReftError('ERR_FORMAT', `${where}: field ${JSON.stringify(field)} is not a string`)
  return v
}
