import type { Tokenize } from '../../src/datasets/supervised.js'

/** Character-level test tokenizer: BOS = 1 when special tokens are on, each char → code + 3. */
export const BOS = 1
export const charTokenizer: Tokenize & { calls: [string, boolean][] } = {
  calls: [],
  encode(text: string, addSpecialTokens: boolean): Uint32Array {
    this.calls.push([text, addSpecialTokens])
    const ids = [...text].map((c) => c.codePointAt(0)! + 3)
    return Uint32Array.from(addSpecialTokens ? [BOS, ...ids] : ids)
  },
}
export const ids = (text: string): number[] => [...text].map((c) => c.codePointAt(0)! + 3)
