/**
 * Classification with encoders on a tiny random BERT (`createTinyEncoder`: hidden 32, 2 layers,
 * character WordPiece, [PAD] 0, [CLS] 2, [SEP] 3, 128 positions): pair encoding, classification
 * items and batches (sink token, positions, padding, token types), head forward and training,
 * save/load, head-only and regression heads, encoder errors, GLUE scoring, and `reft glue`
 * train + eval end to end on a fake RTE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  buildClassificationItems,
  collateTraining,
  computeGlueMetrics,
  createTinyEncoder,
  createTinyModel,
  encoderMaxLength,
  evaluateGlue,
  loadModel,
  loadReft,
  minilmPath,
  toReftError,
  train,
  type ClassificationExample,
  type GlueExample,
  type Model,
  type NativeBatch,
  type Trainable,
} from '../../src/index.js'
import { native } from '../../src/native.js'
import { errorCode } from './helpers.js'

const repo = resolve(import.meta.dirname, '../..')
const root = mkdtempSync(join(tmpdir(), 'reft-cls-'))
const encDir = join(root, 'encoder')
let model: Model

beforeAll(async () => {
  createTinyEncoder(encDir, 3)
  model = await loadModel(encDir)
})
afterAll(() => {
  model?.dispose()
  rmSync(root, { recursive: true, force: true })
})

const CLS = 2
const SEP = 3
const PAD = 0

/** A toy task the tiny model can separate: 'good …' is class 1, 'bad …' class 0. */
function toy(n: number): ClassificationExample[] {
  return Array.from({ length: n }, (_, i) => ({ text: `${i % 2 === 1 ? 'good' : 'bad'} ${'xyz'.slice(0, i % 4)}`, label: i % 2 }))
}

const loreft = (positions: string, tied = false) => ({ kind: 'loreft' as const, layers: 'all' as const, positions, rank: 1, tied })

describe('encoding and items', () => {
  it('encodePair adds special tokens and segment ids, and truncates longest-first', () => {
    const { ids, typeIds } = model.encodePair('hello world', 'abc')
    expect(ids.length).toBe(typeIds.length)
    // [CLS] h e l l o ▁ w o r l d [SEP] a b c [SEP]: the character tokenizer gives one id per character.
    expect(ids[0]).toBe(CLS)
    expect([...ids].filter((t) => t === SEP)).toHaveLength(2)
    const firstSep = ids.indexOf(SEP)
    expect([...typeIds.subarray(0, firstSep + 1)].every((t) => t === 0)).toBe(true)
    expect([...typeIds.subarray(firstSep + 1)].every((t) => t === 1)).toBe(true)
    expect(ids.length - firstSep - 1).toBe(4) // a b c [SEP]
    const cut = model.encodePair('hello world', 'abc', { maxLength: 8 })
    expect(cut.ids.length).toBe(8)
    // Longest first: 'hello world' is cut to 'hel' before 'abc' loses a token ('ab'), as in transformers.
    expect([...cut.typeIds].filter((t) => t === 0)).toHaveLength(5) // [CLS] h e l [SEP]
    expect([...cut.typeIds].filter((t) => t === 1)).toHaveLength(3) // a b [SEP]
    expect(model.decode(cut.ids)).toBe(`${model.decode(model.encode('hel'))} ${model.decode(model.encode('ab'))}`)
    const single = model.encodePair('hi', null, { addSpecialTokens: false })
    expect(single.ids.length).toBe(2)
    expect([...single.typeIds]).toEqual([0, 0])
  })

  it('items append the masked sink and cap short rows at ⌊L/2⌋ positions per side, pointing the rest at the sink', () => {
    const tok = model.handle
    const [long, short] = buildClassificationItems(tok, [{ text: 'abcdefgh', label: 1 }, { text: 'a', label: 0 }], {
      positions: { first: 3, last: 0 },
      numInterventions: 2,
      padId: PAD,
    })
    // 'abcdefgh' → [CLS] 8 chars [SEP] = 10 tokens + sink.
    expect(long!.inputIds.length).toBe(11)
    expect(long!.inputIds[10]).toBe(PAD)
    expect([...long!.attentionMask]).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    expect(long!.locations).toEqual([[0, 1, 2], [0, 1, 2]])
    expect(long!.classLabel).toBe(1)
    // 'a' → [CLS] a [SEP] (L = 3): one prefix position survives, two point at the sink (index 3).
    expect(short!.inputIds.length).toBe(4)
    expect(short!.locations).toEqual([[0, 3, 3], [0, 3, 3]])
    // Untied f1+l1: the first half of the interventions takes the prefix, the second the suffix.
    const [pair] = buildClassificationItems(tok, [{ text: 'ab', textPair: 'cd' }], { positions: { first: 1, last: 1 }, numInterventions: 2, padId: PAD })
    const L = pair!.inputIds.length - 1
    expect(pair!.locations).toEqual([[0], [L - 1]])
    expect([...pair!.tokenTypeIds]).toEqual([0, 0, 0, 0, 1, 1, 1, 0])
    expect(pair!.classLabel).toBeUndefined()
  })

  it('collates right-padded batches with token types, class labels and no token labels', () => {
    using reft = model.withInterventions(loreft('f1+l1'), { head: { numLabels: 3 } })
    const items = reft.classificationDataset([{ text: 'abcdef', textPair: 'gh', label: 2 }, { text: 'a', label: 0 }])
    const batch = collateTraining(items, { padId: 7 })
    const t = batch.seqLen
    expect(t).toBe(items[0]!.inputIds.length)
    expect(batch.labels).toBeUndefined()
    expect([...batch.classLabels!]).toEqual([2, 0])
    // Row 1 is right-padded with the pad id given, masked, token type 0.
    const n1 = items[1]!.inputIds.length
    expect([...batch.inputIds.subarray(t + n1, 2 * t)].every((x) => x === 7)).toBe(true)
    expect([...batch.attentionMask!.subarray(t + n1 - 1, 2 * t)].every((x) => x === 0)).toBe(true)
    expect([...batch.tokenTypeIds!.subarray(0, t)]).toEqual([...items[0]!.tokenTypeIds])
    expect(batch.tokenTypeIds!.subarray(0, t).includes(1)).toBe(true)
    expect([...batch.tokenTypeIds!.subarray(t)].every((x) => x === 0)).toBe(true)
    // Positions [intervention][example][position] for the 2 layers × (prefix, suffix) = 4 interventions.
    expect(reft.config.numInterventions).toBe(4)
    expect(batch.numPositions).toBe(1)
    // Row 1 ([CLS] a [SEP], L = 3) keeps one prefix (0) and one suffix position ([SEP] at 2).
    expect([...batch.positions!]).toEqual([0, 0, 0, 0, t - 2, n1 - 2, t - 2, n1 - 2])
    // A head-only adapter's batch has no positions; mixing row kinds is an error.
    using headOnly = model.withInterventions(null, { head: { numLabels: 3 } })
    const plain = collateTraining(headOnly.classificationDataset([{ text: 'ab', label: 1 }]))
    expect(plain.positions).toBeUndefined()
    expect(() => collateTraining([items[0]!, { ...items[1]!, classLabel: undefined }])).toThrow(/classLabel/)
  })

  it('rejects bad labels, too long inputs and decoder-only calls', async () => {
    using reft = model.withInterventions(loreft('f1'), { head: { numLabels: 2 } })
    expect(await errorCode(() => reft.classificationDataset([{ text: 'a', label: 2 }]))).toBe('ERR_OUT_OF_RANGE')
    expect(await errorCode(() => reft.classificationDataset([{ text: 'a', label: 0.5 }]))).toBe('ERR_INVALID_CONFIG')
    expect(encoderMaxLength(model.info())).toBe(127)
    expect(await errorCode(() => reft.classify(['a'], { maxLength: 128 }))).toBe('ERR_OUT_OF_RANGE')
    expect(await errorCode(() => reft.dataset([{ prompt: 'a', output: 'b' }]))).toBe('ERR_UNSUPPORTED_MODEL')
    using noHead = model.withInterventions(loreft('f1'))
    expect(noHead.head()).toBeNull()
    expect(await errorCode(() => noHead.classify(['a']))).toBe('ERR_INVALID_CONFIG')
    expect(await errorCode(() => model.withInterventions(loreft('f1'), { head: { numLabels: 0 } }))).toBe('ERR_OUT_OF_RANGE')
  })
})

describe('head forward and training', () => {
  it('forward gives [b, numLabels] logits, and a loss only with class labels', async () => {
    using reft = model.withInterventions(loreft('f3'), { head: { numLabels: 3 } })
    expect(reft.head()).toEqual({ numLabels: 3, trainDense: false })
    const batch = collateTraining(reft.classificationDataset([{ text: 'ab', label: 0 }, { text: 'cde', label: 2 }, { text: 'f', label: 1 }]), { padId: PAD })
    const out = await reft.forward(batch)
    expect(out.dims).toEqual([3, 3])
    expect(out.logits).toHaveLength(9)
    expect(out.loss).toBeGreaterThan(0)
    const { classLabels: _c, ...unlabelled } = batch
    const bare = await reft.forward(unlabelled)
    expect(bare.loss).toBeUndefined()
    expect([...bare.logits]).toEqual([...out.logits])
    // The interventions act: other positions give other logits.
    using other = model.withInterventions(loreft('f1'), { head: { numLabels: 3 } })
    const moved = await other.forward(collateTraining(other.classificationDataset([{ text: 'ab' }, { text: 'cde' }, { text: 'f' }])))
    expect(moved.logits.some((v, i) => Math.abs(v - out.logits[i]!) > 1e-6)).toBe(true)
  })

  it('training reduces the loss on a separable toy task; save/load keeps predictions identical', async () => {
    using reft = model.withInterventions(loreft('f1'), { head: { numLabels: 2 }, seed: 1 })
    const data = toy(32)
    const items = reft.classificationDataset(data)
    const texts = data.map((d) => d.text)
    const ends: number[] = []
    const history = await train(reft, items, { epochs: 10, batchSize: 8, lr: 1e-2, onEpochEnd: ({ epoch }) => void ends.push(epoch) })
    expect(ends).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    const first = history.steps[0]!.loss
    const last = history.steps.at(-1)!.loss
    expect(last).toBeLessThan(0.8 * first)
    const p = reft.trainableParameters()
    expect(p.interventionParams).toBe(2 * (2 * 32 + 1))
    expect(p.headParams).toBe(2 * 32 + 2) // out layer only: BERT's pooler stays frozen
    const pred = await reft.classify(texts, { batchSize: 32 })
    const correct = pred.labels.filter((l, i) => l === data[i]!.label).length
    expect(correct / data.length).toBeGreaterThanOrEqual(0.9)
    expect(pred.logits[0]).toHaveLength(2)
    const dir = join(root, 'adapter')
    await reft.save(dir)
    using again = await loadReft(dir, model)
    expect(again.head()).toEqual(reft.head())
    const reloaded = await again.classify(texts, { batchSize: 32 })
    expect(reloaded.logits).toEqual(pred.logits)
    // Batching changes only the padding, which is masked: the same outputs up to rounding.
    const rebatched = await again.classify(texts, { batchSize: 5 })
    expect(Math.max(...rebatched.logits.flat().map((v, i) => Math.abs(v - pred.logits.flat()[i]!)))).toBeLessThan(1e-5)
    // A fresh adapter predicts differently, so the comparison above can fail.
    using fresh = model.withInterventions(loreft('f1'), { head: { numLabels: 2 }, seed: 1 })
    const untrained = await fresh.classify(texts)
    expect(untrained.logits).not.toEqual(pred.logits)
  })

  it('head-only: no interventions, the head trains alone and round-trips', async () => {
    using reft = model.withInterventions(null, { head: { numLabels: 2, trainDense: true }, seed: 2 })
    const p = reft.trainableParameters()
    expect(p.interventionParams).toBe(0)
    expect(p.headParams).toBe(32 * 32 + 32 + 2 * 32 + 2) // dense + out
    expect(p.percent).toBe(0)
    const history = await train(reft, reft.classificationDataset(toy(16)), { epochs: 8, batchSize: 4, lr: 1e-2 })
    expect(history.steps.at(-1)!.loss).toBeLessThan(history.steps[0]!.loss)
    const dir = join(root, 'head-only')
    await reft.save(dir)
    using again = await loadReft(dir, model)
    expect(again.config.numInterventions).toBe(0)
    expect(again.head()).toEqual({ numLabels: 2, trainDense: true })
    expect((await again.classify(['good x', ['bad', 'y']])).logits).toEqual((await reft.classify(['good x', ['bad', 'y']])).logits)
  })

  it('regression (numLabels 1): MSE training moves the outputs toward the targets; labels are the raw values', async () => {
    using reft = model.withInterventions(loreft('f1'), { head: { numLabels: 1 }, seed: 3 })
    const data = toy(16).map((d) => ({ ...d, label: d.label === 1 ? 4.5 : 0.5 }))
    const items = reft.classificationDataset(data)
    expect(items[0]!.classLabel).toBe(0.5)
    const history = await train(reft, items, { epochs: 10, batchSize: 4, lr: 2e-2 })
    expect(history.steps.at(-1)!.loss).toBeLessThan(0.5 * history.steps[0]!.loss)
    const r = await reft.classify(data.map((d) => d.text))
    expect(r.logits.every((row) => row.length === 1)).toBe(true)
    expect(r.labels).toEqual(r.logits.map((row) => row[0]))
    const meanOf = (cls: number) => {
      const xs = r.labels.filter((_, i) => data[i]!.label === cls)
      return xs.reduce((a, x) => a + x, 0) / xs.length
    }
    expect(meanOf(4.5) - meanOf(0.5)).toBeGreaterThan(1)
  })
})

describe('encoders and generation', () => {
  it('generate() rejects with ERR_UNSUPPORTED_MODEL, as the native side does', async () => {
    using reft = model.withInterventions(loreft('f1'), { head: { numLabels: 2 } })
    expect(await errorCode(() => reft.generate('hi'))).toBe('ERR_UNSUPPORTED_MODEL')
    expect(await errorCode(() => model.generate('hi'))).toBe('ERR_UNSUPPORTED_MODEL')
    // The native binding, reached without the TypeScript check, gives the same code.
    const handle = native().createReft(model.handle, [], 0)
    try {
      const ids = model.encode('hi')
      const err = await handle.generate({ inputIds: ids, batchSize: 1, seqLen: ids.length }, { maxNewTokens: 2 }).then(
        () => undefined,
        (e: unknown) => toReftError(e),
      )
      expect(err?.code).toBe('ERR_UNSUPPORTED_MODEL')
    } finally {
      handle.dispose()
    }
  })

  it('a head on a decoder is ERR_UNSUPPORTED_MODEL', async () => {
    const dir = join(root, 'llama')
    createTinyModel(dir, 0)
    using llama = await loadModel(dir)
    expect(llama.info().kind).toBe('decoder')
    expect(await errorCode(() => llama.withInterventions(loreft('l1'), { head: { numLabels: 2 } }))).toBe('ERR_UNSUPPORTED_MODEL')
  })

  it.skipIf(!existsSync(join(minilmPath(), 'config.json')))("loadModel('minilm') opens the cached all-MiniLM-L6-v2", async () => {
    using m = await loadModel('minilm')
    expect(m.path).toBe(minilmPath())
    expect(m.info()).toMatchObject({ architecture: 'bert', kind: 'encoder', numLayers: 6, hiddenSize: 384 })
  })
})

describe('trainer hooks', () => {
  it('pads with the adapter’s padTokenId and calls onEpochEnd with dropout off', async () => {
    const seen: NativeBatch[] = []
    const modes: string[] = []
    const fake: Trainable = {
      padTokenId: 5,
      trainStep: async (micro) => {
        seen.push(...micro)
        return { loss: 1, gradNorm: 1, numTokens: 1, step: seen.length }
      },
      forward: async () => ({ logits: new Float32Array(), dims: [], numTokens: 0 }),
      setTraining: (t) => void modes.push(t ? 'train' : 'eval'),
      save: async () => undefined,
    }
    const items = buildClassificationItems(model.handle, [{ text: 'abcd', label: 0 }, { text: 'a', label: 1 }], { positions: { first: 1, last: 0 }, numInterventions: 1, padId: PAD })
    await train(fake, items, { epochs: 2, batchSize: 2, onEpochEnd: ({ epoch }) => void modes.push(`end ${epoch}`) })
    const b = seen[0]!
    const short = b.classLabels![0] === 1 ? 0 : 1
    expect(b.inputIds[short * b.seqLen + b.seqLen - 1]).toBe(5)
    expect(modes).toEqual(['train', 'eval', 'end 0', 'train', 'eval', 'end 1', 'train', 'eval'])
  })
})

describe('evaluateGlue', () => {
  it('scores the head with the task metrics and checks the head size', async () => {
    using reft = model.withInterventions(loreft('f1'), { head: { numLabels: 2 } })
    const examples: GlueExample[] = toy(12).map((d, idx) => ({ idx: 100 + idx, text: d.text, textPair: 'q', label: d.label! }))
    const r = await evaluateGlue(reft, 'mrpc', examples, { batchSize: 5 })
    const direct = await reft.classify(examples.map((e) => [e.text, e.textPair!] as const))
    expect(r.predictions.map((p) => p.prediction)).toEqual(direct.labels)
    expect(r.predictions[3]).toMatchObject({ idx: 103, label: examples[3]!.label })
    expect(r.metrics).toEqual(computeGlueMetrics('mrpc', direct.labels, examples.map((e) => e.label)))
    expect(r.primaryMetric).toBe('accuracy')
    expect(r.n).toBe(12)
    expect(await errorCode(() => evaluateGlue(reft, 'stsb', examples))).toBe('ERR_INVALID_CONFIG')
  })
})

describe('reft glue (CLI)', () => {
  const dataDir = join(root, 'data')
  const out = join(root, 'glue-rte')
  const words = ['cat', 'dog', 'sun', 'red', 'box', 'hat', 'cup', 'pen']

  beforeAll(() => {
    mkdirSync(join(dataDir, 'glue', 'RTE'), { recursive: true })
    const rows = (n: number) =>
      Array.from({ length: n }, (_, i) => `${i}\tthe ${words[i % 8]} is ${words[(i + 3) % 8]}\t${words[i % 8]}\t${i % 2 === 0 ? 'entailment' : 'not_entailment'}`)
    const header = 'index\tsentence1\tsentence2\tlabel'
    writeFileSync(join(dataDir, 'glue', 'RTE', 'train.tsv'), [header, ...rows(24)].join('\n') + '\n')
    writeFileSync(join(dataDir, 'glue', 'RTE', 'dev.tsv'), [header, ...rows(10)].join('\n') + '\n')
  })

  function reft(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('npx', ['tsx', 'src/cli.ts', ...args], { cwd: repo, encoding: 'utf8', timeout: 90_000, env: { ...process.env, REFT_DATA_DIR: dataDir } })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }

  it('glue train follows the protocol and writes the adapter and report; glue eval reproduces the test metrics', () => {
    const args = ['glue', 'train', 'rte', '--model', encDir, '--train-limit', '16', '--epochs', '2', '--batch-size', '4', '--lr', '1e-2', '--output', out]
    const r = reft(...args)
    expect(r.status, r.stderr).toBe(0)
    expect(readdirSync(out).sort()).toEqual(['glue.json', 'interventions.safetensors', 'loss.svg', 'reft_config.json', 'report.json'])
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'))
    expect(report.command).toBe(`reft ${args.join(' ')}`)
    // 10 dev rows: 5 choose the epoch, 5 are the reported test part; 16 of the 24 train rows.
    expect(report.sizes).toEqual({ train: 16, eval: 5, test: 5 })
    expect(report.train).toMatchObject({ epochs: 2, batchSize: 4, lr: 0.01, steps: 8, maxLength: 127 })
    expect(report.epochs.map((e: { epoch: number }) => e.epoch)).toEqual([1, 2])
    expect([1, 2]).toContain(report.bestEpoch)
    const bestEval = Math.max(...report.epochs.map((e: { eval: { accuracy: number } }) => e.eval.accuracy))
    expect(report.eval.accuracy).toBe(bestEval)
    // The RTE recipe: rank 1 on both layers at the first 3 positions, untied, dropout 0.05.
    expect(report.intervention).toMatchObject({ kind: 'loreft', layers: [0, 1], positions: { first: 3, last: 0 }, rank: 1, dropout: 0.05 })
    expect(report.params.interventionParams).toBe(2 * 65)
    expect(report.params.interventionPercent).toBeCloseTo((100 * 130) / report.params.modelParams, 10)
    expect(report.seconds.total).toBeGreaterThan(0)
    expect(r.stdout).toMatch(/test \(5\): accuracy \d\.\d{4}/)

    const ev = reft('glue', 'eval', 'rte', '--adapter', out, '--output', join(root, 'eval.json'))
    expect(ev.status, ev.stderr).toBe(0)
    const scored = JSON.parse(readFileSync(join(root, 'eval.json'), 'utf8'))
    expect(scored.n).toBe(5)
    expect(scored.metrics).toEqual(report.test)
    const whole = reft('glue', 'eval', 'rte', '--adapter', out, '--split', 'validation')
    expect(whole.status, whole.stderr).toBe(0)
    expect(whole.stdout).toMatch(/rte validation \(10 examples\): accuracy/)
  })

  it('--recipe head-only trains the head alone', () => {
    const dir = join(root, 'glue-head-only')
    const r = reft('glue', 'train', 'rte', '--model', encDir, '--recipe', 'head-only', '--epochs', '1', '--batch-size', '8', '--output', dir)
    expect(r.status, r.stderr).toBe(0)
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'))
    expect(report.intervention).toBeNull()
    expect(report.params.interventionParams).toBe(0)
    expect(report.params.headParams).toBe(2 * 32 + 2)
    expect(report.sizes.train).toBe(24)
  })

  it('usage errors name the problem', () => {
    const noTask = reft('glue', 'train')
    expect(noTask.status).toBe(1)
    expect(noTask.stderr).toMatch(/ERR_INVALID_CONFIG.*GLUE task/)
    const unknown = reft('glue', 'train', 'mnli', '--model', encDir)
    expect(unknown.stderr).toMatch(/ERR_INVALID_CONFIG.*unknown GLUE task/)
    const decoder = join(root, 'llama-cli')
    createTinyModel(decoder, 0)
    const wrong = reft('glue', 'train', 'rte', '--model', decoder, '--epochs', '1', '--output', join(root, 'never'))
    expect(wrong.stderr).toMatch(/ERR_UNSUPPORTED_MODEL/)
    expect(reft('glue', '--help').stdout).toMatch(/reft glue train TASK/)
  })
})
