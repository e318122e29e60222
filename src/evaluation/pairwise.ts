/**
 * Pairwise comparison of an adapter against its base model: both answer the same prompts
 * (greedy, same token budget), a judge ({@link PairJudge}) sees each pair in both orders, and a
 * pair counts as a win (or loss) for the adapter only when both orders agree; when they disagree
 * the judge was following position, not content, and the pair is a tie. Identical responses are
 * ties without asking the judge.
 */
import { ReftError } from '../errors.js'
import type { GenerateOptions } from '../reft-model.js'
import { checkInteger } from '../validate.js'
import type { TextGenerator } from './evaluate.js'
import type { JudgeVerdict, PairJudge } from './judge.js'
import { signTestP, wilsonInterval } from './stats.js'

/** One prompt of the comparison. */
export interface PairwisePrompt {
  id: number
  /** The instruction as the judge sees it. */
  instruction: string
  /** The text both models are prompted with (e.g. the Alpaca template around the instruction). */
  prompt: string
}

/** How a pair ended for the adapter. */
export type PairOutcome = 'win' | 'loss' | 'tie'

/** One judged (or identical) pair. */
export interface PairwiseComparison {
  id: number
  instruction: string
  adapter: string
  base: string
  identical: boolean
  /** Verdict with the adapter's response as A (absent when identical). */
  adapterFirst?: JudgeVerdict
  /** Verdict with the base model's response as A (absent when identical). */
  baseFirst?: JudgeVerdict
  /**
   * The judge's probability that the adapter's response is better, renormalised over {A, B} and
   * averaged over the two orders (absent when identical).
   */
  adapterPreference?: number
  /**
   * The judge's log-odds for the adapter's response with position bias removed:
   * `((log p(A) − log p(B)) with the adapter first − (the same) with the base first) / 2`. A bias
   * toward one position adds the same amount to both orders' margins and cancels here, so a pair
   * the judge always answers "first" still shows which response it leaned to. Positive favours
   * the adapter (absent when identical).
   */
  debiasedMargin?: number
  outcome: PairOutcome
}

/** Aggregate of a comparison. */
export interface PairwiseSummary {
  n: number
  wins: number
  losses: number
  /** Ties, identical pairs included. */
  ties: number
  identical: number
  /** `wins / n`: the adapter preferred in both orders. */
  winRate: number
  /** Wilson 95% interval of `winRate`. */
  ci95: [number, number]
  lossRate: number
  tieRate: number
  /** `(wins + ties / 2) / n`, AlpacaEval's convention for ties. */
  winRateTiesHalf: number
  /** `wins / (wins + losses)` (0 when there are no decisive pairs). */
  decisiveWinRate: number
  /** Wilson 95% interval of `decisiveWinRate`. */
  decisiveCi95: [number, number]
  /** Mean of `adapterPreference` over judged pairs (null when none was judged). */
  meanAdapterPreference: number | null
  /** Judged pairs whose {@link PairwiseComparison.debiasedMargin} favours the adapter (> 0). */
  debiasedAdapter: number
  /** Judged pairs whose debiased margin favours the base model (< 0). */
  debiasedBase: number
  /** Two-sided exact sign test of `debiasedAdapter` vs `debiasedBase` (exact zeros dropped). */
  debiasedSignTestP: number
  /** Mean debiased margin over judged pairs (null when none was judged). */
  meanDebiasedMargin: number | null
  /** Share of all verdicts that chose the response shown first (0.5 = no position bias; null when none). */
  firstPositionRate: number | null
  /** Mean probability the judge put on the two labels together (low = it is not answering the question). */
  meanLabelMass: number | null
}

/** Progress of {@link comparePairwise}, after each prompt is judged. */
export interface PairwiseProgress {
  done: number
  total: number
  wins: number
  losses: number
  ties: number
}

/** Options of {@link comparePairwise}. */
export interface PairwiseOptions {
  /** New-token budget for both models. @defaultValue `128` */
  maxNewTokens?: number
  /** Prompts per `generate` call. @defaultValue `4` */
  batchSize?: number
  /** Extra generation options for both models (e.g. `chat: true`); greedy unless overridden. */
  generate?: Omit<GenerateOptions, 'maxNewTokens' | 'signal' | 'positions'>
  onProgress?: (event: PairwiseProgress) => void
  signal?: AbortSignal
}

/**
 * The outcome from the two verdicts' margins: `adapterFirstMargin = log p(A) − log p(B)` with the
 * adapter as A, `baseFirstMargin` the same with the base model as A.
 */
export function pairOutcome(adapterFirstMargin: number, baseFirstMargin: number): PairOutcome {
  if (adapterFirstMargin > 0 && baseFirstMargin < 0) return 'win'
  if (adapterFirstMargin < 0 && baseFirstMargin > 0) return 'loss'
  return 'tie'
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x))

/** The comparison record of one pair from its two verdicts (or none when the responses are identical). */
export function comparePair(
  p: Pick<PairwisePrompt, 'id' | 'instruction'>,
  adapter: string,
  base: string,
  verdicts?: { adapterFirst: JudgeVerdict; baseFirst: JudgeVerdict },
): PairwiseComparison {
  if (verdicts === undefined) return { id: p.id, instruction: p.instruction, adapter, base, identical: true, outcome: 'tie' }
  const d1 = verdicts.adapterFirst.logProbA - verdicts.adapterFirst.logProbB
  const d2 = verdicts.baseFirst.logProbA - verdicts.baseFirst.logProbB
  return {
    id: p.id,
    instruction: p.instruction,
    adapter,
    base,
    identical: false,
    ...verdicts,
    adapterPreference: (sigmoid(d1) + sigmoid(-d2)) / 2,
    debiasedMargin: (d1 - d2) / 2,
    outcome: pairOutcome(d1, d2),
  }
}

const mean = (xs: readonly number[]): number | null => (xs.length === 0 ? null : xs.reduce((s, x) => s + x, 0) / xs.length)

/** Counts, rates and intervals of `comparisons`. */
export function summarizePairwise(comparisons: readonly PairwiseComparison[]): PairwiseSummary {
  const n = comparisons.length
  const count = (o: PairOutcome): number => comparisons.filter((c) => c.outcome === o).length
  const wins = count('win')
  const losses = count('loss')
  const ties = count('tie')
  const judged = comparisons.filter((c) => !c.identical)
  const verdicts = judged.flatMap((c) => [c.adapterFirst!, c.baseFirst!])
  const rate = (k: number, of: number): number => (of === 0 ? 0 : k / of)
  const debiasedAdapter = judged.filter((c) => c.debiasedMargin! > 0).length
  const debiasedBase = judged.filter((c) => c.debiasedMargin! < 0).length
  return {
    n,
    wins,
    losses,
    ties,
    identical: n - judged.length,
    winRate: rate(wins, n),
    ci95: wilsonInterval(wins, n),
    lossRate: rate(losses, n),
    tieRate: rate(ties, n),
    winRateTiesHalf: rate(wins + ties / 2, n),
    decisiveWinRate: rate(wins, wins + losses),
    decisiveCi95: wilsonInterval(wins, wins + losses),
    meanAdapterPreference: mean(judged.map((c) => c.adapterPreference!)),
    debiasedAdapter,
    debiasedBase,
    debiasedSignTestP: signTestP(debiasedAdapter, debiasedAdapter + debiasedBase),
    meanDebiasedMargin: mean(judged.map((c) => c.debiasedMargin!)),
    firstPositionRate: mean(verdicts.map((v) => (v.logProbA > v.logProbB ? 1 : 0))),
    meanLabelMass: mean(verdicts.map((v) => Math.exp(v.logProbA) + Math.exp(v.logProbB))),
  }
}

/** Generates with both models and judges every pair in both orders, in prompt order. */
export async function comparePairwise(
  adapter: TextGenerator,
  base: TextGenerator,
  judge: PairJudge,
  prompts: readonly PairwisePrompt[],
  options: PairwiseOptions = {},
): Promise<{ summary: PairwiseSummary; comparisons: PairwiseComparison[]; maxNewTokens: number }> {
  const maxNewTokens = checkInteger('maxNewTokens', options.maxNewTokens ?? 128, { min: 1 })
  const batchSize = checkInteger('batchSize', options.batchSize ?? 4, { min: 1 })
  const signal = options.signal
  const gen = { greedy: true, ...options.generate, maxNewTokens, signal }
  const comparisons: PairwiseComparison[] = []
  const tally = { wins: 0, losses: 0, ties: 0 }
  for (let i = 0; i < prompts.length; i += batchSize) {
    if (signal?.aborted === true) throw new ReftError('ERR_ABORTED', 'pairwise comparison aborted')
    const batch = prompts.slice(i, i + batchSize)
    const texts = batch.map((p) => p.prompt)
    const a = (await adapter.generate(texts, gen)).texts
    const b = (await base.generate(texts, gen)).texts
    for (const [k, p] of batch.entries()) {
      const ra = (a[k] ?? '').trim()
      const rb = (b[k] ?? '').trim()
      let c: PairwiseComparison
      if (ra === rb) c = comparePair(p, ra, rb)
      else {
        const adapterFirst = await judge.judge(p.instruction, ra, rb, signal)
        const baseFirst = await judge.judge(p.instruction, rb, ra, signal)
        c = comparePair(p, ra, rb, { adapterFirst, baseFirst })
      }
      comparisons.push(c)
      tally[c.outcome === 'win' ? 'wins' : c.outcome === 'loss' ? 'losses' : 'ties']++
      options.onProgress?.({ done: comparisons.length, total: prompts.length, ...tally })
    }
  }
  return { summary: summarizePairwise(comparisons), comparisons, maxNewTokens }
}
