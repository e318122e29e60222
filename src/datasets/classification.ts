/**
 * Classification items for encoders with a head: a text or text pair, tokenised with the model's
 * special tokens (`[CLS] a [SEP] b [SEP]`, `<s> a </s></s> b </s>`) and segment ids, plus the
 * example's class id (or regression score) and the intervention positions.
 *
 * This follows pyreft's GLUE dataset (`LoReftGLUEDataset`, `pad_mode="last"`): the pair is
 * truncated longest-first to `maxLength` (transformers' `truncation=True`), positions come from
 * {@link getInterventionLocations} with `lastPosition` = the token count and pad mode 'last', and
 * one pad token (the "sink") is appended to every row, with attention 0 and token type 0.
 *
 * Rows shorter than the positions need: `getInterventionLocations` caps prefix and suffix at
 * ⌊L/2⌋ positions each and points the positions it drops at index L — the appended sink. The
 * sink is masked out, so nothing attends to it and its hidden state never reaches the head:
 * an intervention there is a no-op. A 4-token row with `f3` is therefore edited at positions 0
 * and 1 only, exactly as in pyreft.
 */
import { ReftError, invalidConfig } from '../errors.js'
import type { Positions } from '../config.js'
import { getInterventionLocations } from '../positions.js'
import { checkBoolean, checkInteger, checkNumber } from '../validate.js'
import type { CollatableItem } from './collate.js'

/** One example: a text or text pair and, for training and evaluation, its label. */
export interface ClassificationExample {
  text: string
  /** The second text of a pair task (e.g. an entailment hypothesis). */
  textPair?: string
  /** Class id in 0 … numLabels−1, or the target score for regression (numLabels 1). */
  label?: number
}

/** A tokenised classification row, ready for {@link collateTraining} and `train`. */
export interface ClassificationItem extends CollatableItem {
  inputIds: Uint32Array
  attentionMask: Uint8Array
  tokenTypeIds: Uint32Array
  /** `[intervention][position]`, `[]` without interventions. */
  locations: number[][]
}

/** The tokenizer surface the items need (`NativeModel` satisfies it). */
export interface PairTokenizer {
  encodePair(text: string, pair: string | null, addSpecialTokens: boolean, maxLength?: number | null): { ids: Uint32Array; typeIds: Uint32Array }
}

/** Options of {@link buildClassificationItems}. */
export interface ClassificationItemOptions {
  /** Prefix/suffix positions (unused when `numInterventions` is 0). */
  positions: Positions
  /** Interventions of the adapter; 0 for a head-only adapter. */
  numInterventions: number
  /** pyreft `share_weights` (the adapter's `tied`). @defaultValue `false` */
  shareWeights?: boolean
  /** The sink token appended to every row: the model's pad id. */
  padId: number
  /** Longest tokenised input, special tokens included, before the sink is appended. @defaultValue no limit */
  maxLength?: number
  /** When given, labels must be class ids below it (numLabels 1: any finite score). */
  numLabels?: number
}

function checkLabel(label: number | undefined, numLabels: number | undefined, i: number): number | undefined {
  if (label === undefined) return undefined
  const field = `examples[${i}].label`
  if (numLabels === undefined || numLabels === 1) return checkNumber(field, label)
  return checkInteger(field, label, { min: 0, max: numLabels - 1 })
}

/**
 * Tokenises `examples` into classification items positioned as described in the module comment.
 * Empty texts are ERR_INVALID_CONFIG; labels out of `0 … numLabels−1` are ERR_OUT_OF_RANGE.
 */
export function buildClassificationItems(tok: PairTokenizer, examples: readonly ClassificationExample[], options: ClassificationItemOptions): ClassificationItem[] {
  const numInterventions = checkInteger('numInterventions', options.numInterventions, { min: 0 })
  const padId = checkInteger('padId', options.padId, { min: 0 })
  const shareWeights = checkBoolean('shareWeights', options.shareWeights ?? false)
  const maxLength = options.maxLength === undefined ? undefined : checkInteger('maxLength', options.maxLength, { min: 2 })
  const { first, last } = options.positions
  return examples.map((ex, i) => {
    if (typeof ex?.text !== 'string') throw invalidConfig(`examples[${i}].text`, 'expected a string')
    if (ex.textPair !== undefined && typeof ex.textPair !== 'string') throw invalidConfig(`examples[${i}].textPair`, 'expected a string')
    const classLabel = checkLabel(ex.label, options.numLabels, i)
    const { ids, typeIds } = tok.encodePair(ex.text, ex.textPair ?? null, true, maxLength ?? null)
    const n = ids.length
    if (n === 0) throw new ReftError('ERR_SHAPE', `examples[${i}] tokenises to nothing`)
    const inputIds = new Uint32Array(n + 1)
    inputIds.set(ids)
    inputIds[n] = padId
    const tokenTypeIds = new Uint32Array(n + 1)
    tokenTypeIds.set(typeIds)
    const attentionMask = new Uint8Array(n + 1).fill(1, 0, n)
    const locations = numInterventions === 0 ? [] : getInterventionLocations({ lastPosition: n, first, last, numInterventions, shareWeights, padMode: 'last' })
    const item: ClassificationItem = { inputIds, attentionMask, tokenTypeIds, locations }
    if (classLabel !== undefined) item.classLabel = classLabel
    return item
  })
}
