import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SupervisedItem } from '../../src/datasets/supervised.js'
import type { NativeBatch, NativeForwardOutput, NativeStepOptions, NativeStepStats } from '../../src/native-api.js'
import type { Trainable } from '../../src/trainer-options.js'

/** Loss as a deterministic function of one batch's contents (ids weighted by position, masked by labels). */
export function batchLoss(b: NativeBatch): number {
  let acc = 0
  for (let i = 0; i < b.inputIds.length; i++) acc = (acc + b.inputIds[i]! * (i + 1) * (b.attentionMask?.[i] ?? 1)) % 9973
  return 0.5 + acc / 10000
}

export interface FakeOptions {
  /** trainStep waits this long on a timer (0 = resolves without any macrotask). */
  delayMs?: number
  /** Override the loss of step n (1-based). */
  lossAt?: (step: number) => number | undefined
  /** Eval losses to return, in order (one per evaluation, all batches of it). */
  evalLosses?: number[]
  /** Throw from save at this step. */
  failSaveAt?: number
}

export class FakeReft implements Trainable {
  step = 0
  training = false
  readonly trainingLog: boolean[] = []
  readonly calls: { lr: number; weightDecay?: number; maxGradNorm?: number; rows: number[][] }[] = []
  readonly forwardTraining: boolean[] = []
  private evalIndex = -1
  private lastEvalStep = -1

  constructor(private readonly o: FakeOptions = {}) {}

  async trainStep(micro: NativeBatch[], opts: NativeStepOptions): Promise<NativeStepStats> {
    if ((this.o.delayMs ?? 0) > 0) await sleep(this.o.delayMs)
    this.step++
    // row signature = first id of each row (items are built so that it identifies the item)
    const rows = micro.map((b) => Array.from({ length: b.batchSize }, (_, r) => b.inputIds[r * b.seqLen]!))
    this.calls.push({ lr: opts.lr, weightDecay: opts.weightDecay, maxGradNorm: opts.maxGradNorm, rows })
    const loss = this.o.lossAt?.(this.step) ?? micro.reduce((s, b) => s + batchLoss(b), 0) / micro.length
    return { loss, gradNorm: loss / 2, numTokens: 1, step: this.step }
  }

  async forward(batch: NativeBatch): Promise<NativeForwardOutput> {
    this.forwardTraining.push(this.training)
    if (this.lastEvalStep !== this.step) {
      this.lastEvalStep = this.step
      this.evalIndex++
    }
    const labelled = Array.from(batch.labels ?? []).filter((l) => l !== -100).length
    const loss = this.o.evalLosses?.[this.evalIndex] ?? batchLoss(batch)
    return { logits: new Float32Array(0), dims: [], loss, numTokens: labelled }
  }

  setTraining(training: boolean): void {
    this.training = training
    this.trainingLog.push(training)
  }

  async save(dir: string, withOptimizer: boolean): Promise<void> {
    await writeFile(join(dir, 'weights.json'), JSON.stringify({ step: this.step, withOptimizer }))
    if (this.o.failSaveAt === this.step) throw Object.assign(new Error('disk full'), { code: 'ERR_IO' })
  }
}

/** `n` items; item k starts with id 1000 + k (its signature), lengths vary 2..5. */
export function makeItems(n: number): SupervisedItem[] {
  return Array.from({ length: n }, (_, k) => {
    const len = 2 + (k % 4)
    const inputIds = Uint32Array.from({ length: len }, (_, i) => (i === 0 ? 1000 + k : 7 * k + i))
    const labels = Int32Array.from(inputIds, (v, i) => (i === 0 ? -100 : v))
    return { inputIds, labels, attentionMask: new Uint8Array(len).fill(1), locations: [[0]], promptLength: 1 }
  })
}
