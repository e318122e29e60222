/**
 * Supervised (prompt → output) items in the three pyreft flavours.
 *
 * - `buildLastPositionItems`: pyreft `make_last_position_supervised_data_module`: positions
 *   `[[promptLen − 1]] × numInterventions`, no sink.
 * - `buildMultiplePositionItems`: pyreft `make_multiple_position_supervised_data_module`: positions
 *   from `getInterventionLocations(lastPosition = promptLen, padMode 'last')`, no sink, so pad
 *   entries point at the first response token (pyreft's behaviour, kept).
 * - `buildSinkItems`: the paper scripts' `ReftDataset` / `LoReftSupervisedDataset`: one pad token
 *   (the sink) is prepended (label −100, attention 0), locations from pad mode 'first' shifted +1, so
 *   pads land on the sink.
 *
 * In all three the prompt is tokenised on its own and again as prompt + output (+ EOS unless
 * `nonstop`), and labels are −100 on the first `promptLen` tokens.
 *
 * Truncation policy (`maxLength` counts the sink): 'truncate' (default) cuts the *response* tail;
 * a prompt that leaves no room for one target token is an ERR_OUT_OF_RANGE error, because cutting
 * the prompt would move the intervention positions. 'drop' skips any example that does not fit
 * whole; 'error' throws on any example that does not fit.
 */
import { ReftError, invalidConfig, outOfRange } from '../errors.js'
import type { Positions } from '../config.js'
import { resolvePositions } from '../config.js'
import { getInterventionLocations } from '../positions.js'
import { checkBoolean, checkInteger, checkOneOf } from '../validate.js'
import { type InstructionExample, type PromptFormat, formatPrompt } from './instruction.js'

/** Label value for tokens that carry no loss (HF / pyreft `IGNORE_INDEX`). */
export const ignoreIndex = -100

/** The tokenizer surface the datasets need (`NativeModel` satisfies it). */
export interface Tokenize {
  /** Token ids of `text`; `addSpecialTokens` adds BOS etc. as the tokenizer is configured. */
  encode(text: string, addSpecialTokens: boolean): Uint32Array
}

/** One tokenised training example. All arrays have the same length. */
export interface SupervisedItem {
  inputIds: Uint32Array
  /** −100 on the prompt (and sink); token ids on the target. Not shifted. */
  labels: Int32Array
  /** 1 = attend, 0 = sink. */
  attentionMask: Uint8Array
  /** `[intervention][position]`, absolute indices into `inputIds`. */
  locations: number[][]
  /** Number of leading tokens without loss (prompt, plus the sink when present). */
  promptLength: number
}

/** What to do with an example longer than `maxLength`. */
export type OverflowPolicy = 'truncate' | 'drop' | 'error'

/** Options shared by every supervised builder. */
export interface SupervisedOptions {
  /**
   * How to format `InstructionExample.prompt`.
   * @defaultValue `{ kind: 'raw' }`
   */
  format?: PromptFormat
  /** EOS text appended to prompt + output before tokenising (pyreft `tokenizer.eos_token`). */
  eosText?: string
  /** EOS id appended after tokenising; an alternative to `eosText` (give one, not both). */
  eosId?: number
  /**
   * Do not append EOS (pyreft `nonstop`).
   * @defaultValue `false`
   */
  nonstop?: boolean
  /**
   * Passed to `encode` for both the prompt and the full text.
   * @defaultValue `true`
   */
  addSpecialTokens?: boolean
  /** Maximum item length in tokens (sink included). Unlimited when omitted. */
  maxLength?: number
  /**
   * Policy for examples longer than `maxLength` (see the module docs).
   * @defaultValue `'truncate'`
   */
  overflow?: OverflowPolicy
  /** Called with the example index of each example skipped by `overflow: 'drop'`. */
  onDrop?: (index: number) => void
}

/** Options for position-based builders. */
export interface PositionItemOptions extends SupervisedOptions {
  /** Prefix/suffix positions (`{first, last}` or `'f1+l1'`). */
  positions: Positions | string
  /**
   * Number of interventions (`resolveConfig(...).numInterventions`).
   * @defaultValue `1`
   */
  numInterventions?: number
  /**
   * pyreft `share_weights` (`resolveConfig(...).shareWeights`).
   * @defaultValue `false`
   */
  shareWeights?: boolean
}

/** Options for {@link buildSinkItems}. */
export interface SinkItemOptions extends PositionItemOptions {
  /** Token id of the sink (the tokenizer's pad token). */
  padId: number
}

/** Options for {@link buildLastPositionItems}. */
export interface LastPositionItemOptions extends SupervisedOptions {
  /**
   * Number of interventions; each gets the last prompt token.
   * @defaultValue `1`
   */
  numInterventions?: number
}

interface Encoded {
  promptLength: number
  fullIds: Uint32Array
}

function encodeExample(tok: Tokenize, ex: InstructionExample, index: number, o: SupervisedOptions): Encoded {
  if (typeof ex?.prompt !== 'string' || typeof ex.output !== 'string') {
    throw invalidConfig(`examples[${index}]`, 'expected {prompt: string, output: string}')
  }
  const nonstop = checkBoolean('nonstop', o.nonstop ?? false)
  const special = checkBoolean('addSpecialTokens', o.addSpecialTokens ?? true)
  if (o.eosText !== undefined && o.eosId !== undefined) throw invalidConfig('eosId', 'give eosText or eosId, not both')
  if (!nonstop && o.eosText === undefined && o.eosId === undefined) {
    throw invalidConfig('eosText', 'an EOS (eosText or eosId) is required unless nonstop is true')
  }
  const promptText = formatPrompt(ex, o.format)
  const promptIds = tok.encode(promptText, special)
  const eosText = nonstop ? '' : (o.eosText ?? '')
  let fullIds = tok.encode(promptText + ex.output + eosText, special)
  if (!nonstop && o.eosId !== undefined) {
    const withEos = new Uint32Array(fullIds.length + 1)
    withEos.set(fullIds)
    withEos[fullIds.length] = checkInteger('eosId', o.eosId, { min: 0 })
    fullIds = withEos
  }
  if (promptIds.length === 0) throw new ReftError('ERR_SHAPE', `examples[${index}]: the prompt tokenises to nothing`)
  if (fullIds.length <= promptIds.length) {
    throw new ReftError('ERR_SHAPE', `examples[${index}]: no target tokens after the prompt`)
  }
  return { promptLength: promptIds.length, fullIds }
}

/** Apply the overflow policy; returns the (possibly cut) ids or `null` to drop the example. */
function fitLength(e: Encoded, sink: number, index: number, o: SupervisedOptions): Uint32Array | null {
  if (o.maxLength === undefined) return e.fullIds
  const max = checkInteger('maxLength', o.maxLength, { min: 2 })
  const policy = checkOneOf('overflow', o.overflow ?? 'truncate', ['truncate', 'drop', 'error'] as const)
  if (e.fullIds.length + sink <= max) return e.fullIds
  if (policy === 'drop') {
    o.onDrop?.(index)
    return null
  }
  if (policy === 'error') {
    throw outOfRange('maxLength', `examples[${index}] has ${e.fullIds.length + sink} tokens, more than ${max}`)
  }
  if (e.promptLength + sink + 1 > max) {
    throw outOfRange('maxLength', `examples[${index}]: the prompt alone has ${e.promptLength + sink} tokens, no room for a target within ${max}`)
  }
  return e.fullIds.subarray(0, max - sink)
}

function makeItem(ids: Uint32Array, promptLength: number, sinkId: number | undefined, locations: number[][]): SupervisedItem {
  const sink = sinkId === undefined ? 0 : 1
  const n = ids.length + sink
  const inputIds = new Uint32Array(n)
  const labels = new Int32Array(n)
  const attentionMask = new Uint8Array(n).fill(1)
  if (sinkId !== undefined) {
    inputIds[0] = sinkId
    attentionMask[0] = 0
  }
  inputIds.set(ids, sink)
  for (let i = 0; i < n; i++) labels[i] = i < promptLength + sink ? ignoreIndex : inputIds[i]!
  return { inputIds, labels, attentionMask, locations, promptLength: promptLength + sink }
}

function build(
  tok: Tokenize,
  examples: readonly InstructionExample[],
  o: SupervisedOptions,
  sinkId: number | undefined,
  locate: (promptLength: number) => number[][],
): SupervisedItem[] {
  const items: SupervisedItem[] = []
  examples.forEach((ex, i) => {
    const e = encodeExample(tok, ex, i, o)
    const ids = fitLength(e, sinkId === undefined ? 0 : 1, i, o)
    if (ids !== null) items.push(makeItem(ids, e.promptLength, sinkId, locate(e.promptLength)))
  })
  return items
}

/** pyreft `make_last_position_supervised_data_module` items. */
export function buildLastPositionItems(
  tokenizer: Tokenize,
  examples: readonly InstructionExample[],
  options: LastPositionItemOptions,
): SupervisedItem[] {
  const n = checkInteger('numInterventions', options.numInterventions ?? 1, { min: 1 })
  return build(tokenizer, examples, options, undefined, (len) => Array.from({ length: n }, () => [len - 1]))
}

/** pyreft `make_multiple_position_supervised_data_module` items (pad mode 'last', no sink). */
export function buildMultiplePositionItems(
  tokenizer: Tokenize,
  examples: readonly InstructionExample[],
  options: PositionItemOptions,
): SupervisedItem[] {
  const { first, last } = resolvePositions(options.positions)
  const numInterventions = options.numInterventions ?? 1
  const shareWeights = options.shareWeights ?? false
  return build(tokenizer, examples, options, undefined, (len) =>
    getInterventionLocations({ lastPosition: len, first, last, numInterventions, shareWeights, padMode: 'last' }),
  )
}

/** Paper-script `ReftDataset` items: sink prepended, pad mode 'first', locations +1. */
export function buildSinkItems(
  tokenizer: Tokenize,
  examples: readonly InstructionExample[],
  options: SinkItemOptions,
): SupervisedItem[] {
  const { first, last } = resolvePositions(options.positions)
  const padId = checkInteger('padId', options.padId, { min: 0 })
  const numInterventions = options.numInterventions ?? 1
  const shareWeights = options.shareWeights ?? false
  return build(tokenizer, examples, options, padId, (len) =>
    getInterventionLocations({ lastPosition: len, first, last, numInterventions, shareWeights, padMode: 'first' }).map(
      (list) => list.map((p) => p + 1),
    ),
  )
}
