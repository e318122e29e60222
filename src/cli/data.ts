/**
 * Reads a training file for `reft train`: a JSON array or JSON Lines of records
 * `{prompt | instruction, output, input?}` (Alpaca-style files use `instruction`).
 */
import { readFile } from 'node:fs/promises'
import type { InstructionExample } from '../datasets/instruction.js'
import { ReftError } from '../errors.js'

function toExample(record: unknown, where: string): InstructionExample {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new ReftError('ERR_FORMAT', `${where}: expected an object {prompt|instruction, output, input?}`)
  }
  const r = record as Record<string, unknown>
  const prompt = r.prompt ?? r.instruction
  if (typeof prompt !== 'string') throw new ReftError('ERR_FORMAT', `${where}: needs a string "prompt" or "instruction"`)
  if (typeof r.output !== 'string') throw new ReftError('ERR_FORMAT', `${where}: needs a string "output"`)
  if (r.input !== undefined && typeof r.input !== 'string') throw new ReftError('ERR_FORMAT', `${where}: "input" must be a string`)
  return r.input === undefined || r.input === '' ? { prompt, output: r.output } : { prompt, output: r.output, input: r.input }
}

/** Parses the text of a data file (`file` names it in errors). */
export function parseExamples(text: string, file: string): InstructionExample[] {
  const trimmed = text.trim()
  if (trimmed.startsWith('[')) {
    let records: unknown
    try {
      records = JSON.parse(trimmed)
    } catch (e) {
      throw new ReftError('ERR_FORMAT', `${file} is not valid JSON: ${(e as Error).message}`, { cause: e })
    }
    return (records as unknown[]).map((r, i) => toExample(r, `${file}[${i}]`))
  }
  const examples: InstructionExample[] = []
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return
    let record: unknown
    try {
      record = JSON.parse(line)
    } catch (e) {
      throw new ReftError('ERR_FORMAT', `${file}:${i + 1} is not valid JSON: ${(e as Error).message}`, { cause: e })
    }
    examples.push(toExample(record, `${file}:${i + 1}`))
  })
  return examples
}

/** Reads and parses a data file; `limit` keeps the first N examples. */
export async function readExamples(file: string, limit?: number): Promise<InstructionExample[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new ReftError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e })
  }
  const examples = parseExamples(text, file)
  if (examples.length === 0) throw new ReftError('ERR_FORMAT', `${file} holds no examples`)
  return limit === undefined ? examples : examples.slice(0, limit)
}
