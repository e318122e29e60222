/**
 * Prompt-only items for generation and evaluation, with the same intervention locations the
 * matching training builder used (see supervised.ts), ready for left-padded collation.
 *
 * For 'multiple_position', pad entries that point at `promptLen` (the first response token, which
 * does not exist during prefill) are dropped; a list left empty is an ERR_SHAPE error.
 */
import type { Positions } from '../config.js'
import { resolvePositions } from '../config.js'
import { ReftError, invalidConfig } from '../errors.js'
import { getInterventionLocations } from '../positions.js'
import { checkBoolean, checkInteger, checkOneOf } from '../validate.js'
import { type InstructionExample, type PromptFormat, formatPrompt } from './instruction.js'
import type { Tokenize } from './supervised.js'

/** One tokenised prompt. */
export interface PromptItem {
  inputIds: Uint32Array
  /** 1 = attend, 0 = sink. */
  attentionMask: Uint8Array
  /** `[intervention][position]`, absolute indices into `inputIds`. */
  locations: number[][]
}

/** Which training builder's locations to reproduce. */
export type PromptLocationMode = 'last_position' | 'multiple_position' | 'sink'

/** Options of {@link buildPromptItems}. */
export interface PromptItemOptions {
  /** Location scheme; must match the one used for training. */
  mode: PromptLocationMode
  /**
   * Prompt formatting.
   * @defaultValue `{ kind: 'raw' }`
   */
  format?: PromptFormat
  /**
   * Passed to `encode`.
   * @defaultValue `true`
   */
  addSpecialTokens?: boolean
  /** Prefix/suffix positions; required for 'multiple_position' and 'sink'. */
  positions?: Positions | string
  /**
   * Number of interventions.
   * @defaultValue `1`
   */
  numInterventions?: number
  /**
   * pyreft `share_weights`.
   * @defaultValue `false`
   */
  shareWeights?: boolean
  /** Sink token id; required for 'sink'. */
  padId?: number
}

/** Tokenise prompts (strings are used as-is, examples go through `format`) and locate them. */
export function buildPromptItems(
  tokenizer: Tokenize,
  prompts: readonly (string | Pick<InstructionExample, 'prompt' | 'input'>)[],
  options: PromptItemOptions,
): PromptItem[] {
  const mode = checkOneOf('mode', options.mode, ['last_position', 'multiple_position', 'sink'] as const)
  const special = checkBoolean('addSpecialTokens', options.addSpecialTokens ?? true)
  const numInterventions = checkInteger('numInterventions', options.numInterventions ?? 1, { min: 1 })
  const shareWeights = options.shareWeights ?? false
  const needsPositions = mode !== 'last_position'
  if (needsPositions && options.positions === undefined) throw invalidConfig('positions', `required for mode '${mode}'`)
  const pos = needsPositions ? resolvePositions(options.positions!) : { first: 0, last: 1 }
  const padId = mode === 'sink' ? checkInteger('padId', options.padId, { min: 0 }) : 0

  return prompts.map((p, i) => {
    const text = typeof p === 'string' ? p : formatPrompt(p, options.format)
    const ids = tokenizer.encode(text, special)
    const len = ids.length
    if (len === 0) throw new ReftError('ERR_SHAPE', `prompts[${i}] tokenises to nothing`)
    if (mode === 'last_position') {
      return { inputIds: ids, attentionMask: new Uint8Array(len).fill(1), locations: Array.from({ length: numInterventions }, () => [len - 1]) }
    }
    const base = { lastPosition: len, first: pos.first, last: pos.last, numInterventions, shareWeights }
    if (mode === 'multiple_position') {
      const locations = getInterventionLocations({ ...base, padMode: 'last' }).map((l) => l.filter((x) => x < len))
      if (locations.some((l) => l.length === 0)) {
        throw new ReftError('ERR_SHAPE', `prompts[${i}] is too short (${len} tokens) for positions f${pos.first}+l${pos.last}`)
      }
      return { inputIds: ids, attentionMask: new Uint8Array(len).fill(1), locations }
    }
    const inputIds = new Uint32Array(len + 1)
    inputIds[0] = padId
    inputIds.set(ids, 1)
    const attentionMask = new Uint8Array(len + 1).fill(1)
    attentionMask[0] = 0
    const locations = getInterventionLocations({ ...base, padMode: 'first' }).map((l) => l.map((x) => x + 1))
    return { inputIds, attentionMask, locations }
  })
}
