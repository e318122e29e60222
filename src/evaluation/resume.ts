/**
 * Resumable runs: each finished example is appended to a JSONL file as one line
 * `{"task", "id", ...result}`; a restart reads the lines of its task and skips those ids.
 * A torn last line (a crash mid-write) is ignored.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import type { EvalExampleResult } from './results.js'

/** The results already recorded for `task` in `file` (none when the file does not exist), by id. */
export function readResumeFile(file: string, task: string): Map<number, EvalExampleResult> {
  const done = new Map<number, EvalExampleResult>()
  if (!existsSync(file)) return done
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue
    let row: unknown
    try {
      row = JSON.parse(line)
    } catch {
      continue
    }
    const r = row as Partial<EvalExampleResult> & { task?: unknown }
    if (r.task !== task || typeof r.id !== 'number' || typeof r.correct !== 'boolean') continue
    done.set(r.id, {
      id: r.id,
      prompt: String(r.prompt ?? ''),
      generation: String(r.generation ?? ''),
      prediction: String(r.prediction ?? ''),
      gold: String(r.gold ?? ''),
      correct: r.correct,
    })
  }
  return done
}

/** Appends finished results of `task` to `file` (creating its directory). */
export function appendResults(file: string, task: string, results: readonly EvalExampleResult[]): void {
  if (results.length === 0) return
  mkdirSync(dirname(file), { recursive: true })
  const lead = endsTorn(file) ? '\n' : ''
  appendFileSync(file, lead + results.map((r) => JSON.stringify({ task, ...r })).join('\n') + '\n')
}

/** True when `file` is non-empty and does not end in a newline (a line torn by a crash). */
function endsTorn(file: string): boolean {
  if (!existsSync(file)) return false
  const size = statSync(file).size
  if (size === 0) return false
  const fd = openSync(file, 'r')
  try {
    const b = Buffer.alloc(1)
    readSync(fd, b, 0, 1, size - 1)
    return b[0] !== 0x0a
  } finally {
    closeSync(fd)
  }
}
