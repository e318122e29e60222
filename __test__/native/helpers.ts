/**
 * Shared fixtures of the native suites: a tiny random Llama written to a fresh temp directory
 * (HF layout, byte-level tokenizer, vocab 259, 2 layers, hidden 32) and a small instruction set.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { createTinyModel, loadModel, type InstructionExample, type Model } from '../../src/index.js'

/** Vocabulary size of the tiny model. */
export const tinyVocab = 259
/** Hidden size of the tiny model. */
export const tinyHidden = 32
/** Pad token id of the tiny model (`<pad>`). */
export const tinyPad = 258

/** A temp directory with `model/` holding a tiny model; `cleanup` removes it. */
export function tinyWorkspace(seed = 0): { root: string; modelDir: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'reft-native-'))
  const modelDir = join(root, 'model')
  createTinyModel(modelDir, seed)
  return { root, modelDir, cleanup: () => rmSync(root, { recursive: true, force: true }) }
}

/** Four short prompt → output pairs. */
export const tinyExamples: InstructionExample[] = [
  { prompt: 'hi', output: 'there' },
  { prompt: 'abc', output: 'def' },
  { prompt: 'one', output: 'two' },
  { prompt: 'red', output: 'blue' },
]

/** The `code` of what `f` throws or rejects with (fails the test when it does not throw). */
export async function errorCode(f: () => unknown): Promise<string> {
  try {
    await f()
  } catch (e) {
    return String((e as { code?: unknown }).code)
  }
  throw new Error('expected an error, but the call succeeded')
}

/** Loads the workspace's model before the suite (handing it to `set`) and frees both after. */
export function loadForSuite(ws: { modelDir: string; cleanup: () => void }, set: (m: Model) => void): void {
  let model: Model | undefined
  beforeAll(async () => {
    model = await loadModel(ws.modelDir)
    set(model)
  })
  afterAll(() => {
    model?.dispose()
    ws.cleanup()
  })
}

/** Words of the tiny GLUE fixtures. */
export const glueWords = ['great', 'awful', 'fine', 'dull', 'fun', 'bad', 'nice', 'poor']

/** A tiny SST-2 under `dataDir/glue/SST-2`: 40 train and 12 dev rows, labels alternating. */
export function writeTinySst2(dataDir: string): void {
  const sst = (n: number, from: number) => Array.from({ length: n }, (_, i) => `${i % 2 === 1 ? 'good' : 'bad'} ${glueWords[(from + i) % 8]} film\t${i % 2}`)
  mkdirSync(join(dataDir, 'glue', 'SST-2'), { recursive: true })
  writeFileSync(join(dataDir, 'glue', 'SST-2', 'train.tsv'), ['sentence\tlabel', ...sst(40, 0)].join('\n') + '\n')
  writeFileSync(join(dataDir, 'glue', 'SST-2', 'dev.tsv'), ['sentence\tlabel', ...sst(12, 3)].join('\n') + '\n')
}
