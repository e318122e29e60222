/**
 * pyreft's answer extraction (examples/loreft/compute_metrics.py) on handcrafted strings: trigger
 * search, commonsense exact match, last-number math rule, AQuA first letter, Python float parsing.
 */
import { describe, expect, it } from 'vitest'
import {
  extractAnswerLetter,
  extractAnswerNumber,
  extractOutput,
  isFloat,
  pyFloat,
  scoreCommonsense,
  scoreGeneration,
  scoreMath,
} from '../src/index.js'

describe('extractOutput', () => {
  it('returns the left-stripped text after the first trigger', () => {
    expect(extractOutput('Q?\nthe correct answer is   true', 'the correct answer is ')).toBe('true')
    expect(extractOutput('a X b X c', 'X')).toBe('b X c')
  })
  it('returns "" when the trigger is absent, and the text when the trigger is empty', () => {
    expect(extractOutput('the answer is true', 'the correct answer is ')).toBe('')
    expect(extractOutput('  keep  ', '')).toBe('  keep  ')
  })
  it('keeps trailing whitespace (only the left side is stripped)', () => {
    expect(extractOutput('### Response:\n 42 \n', '### Response:')).toBe('42 \n')
  })
})

describe('commonsense scoring (pyreft exact match)', () => {
  const prompt = 'Please answer true or false.\n'
  it('is correct only when the text after the trigger is exactly the answer', () => {
    expect(scoreCommonsense(`${prompt}the correct answer is true`, 'true')).toEqual({ prediction: 'true', correct: true })
    expect(scoreCommonsense(`${prompt}the correct answer is true\n`, ' true ')).toEqual({ prediction: 'true', correct: true })
    expect(scoreCommonsense(`${prompt}the correct answer is false`, 'true').correct).toBe(false)
  })
  it('fails when the model keeps talking after the label (no EOS)', () => {
    const s = scoreCommonsense(`${prompt}the correct answer is true. Because`, 'true')
    expect(s).toEqual({ prediction: 'true. Because', correct: false })
  })
  it('fails without the trigger, and is case-sensitive', () => {
    expect(scoreCommonsense(`${prompt}true`, 'true')).toEqual({ prediction: '', correct: false })
    expect(scoreCommonsense(`${prompt}the correct answer is True`, 'true').correct).toBe(false)
  })
  it('uses the first trigger occurrence', () => {
    expect(scoreCommonsense('the correct answer is answer1 the correct answer is answer2', 'answer2').correct).toBe(false)
  })
  it('llm-adapters scoring takes the first label of the dataset vocabulary', () => {
    expect(scoreCommonsense('x\nthe correct answer is option2, since', 'option2', 'llm-adapters', 'winogrande')).toEqual({ prediction: 'option2', correct: true })
    expect(scoreCommonsense('x\nthe correct answer is falsetrue', 'true', 'llm-adapters', 'boolq')).toEqual({ prediction: 'false', correct: false })
    // no trigger: searched in the whole text
    expect(scoreCommonsense('I think ending3', 'ending3', 'llm-adapters', 'hellaswag_dev').correct).toBe(true)
    expect(scoreCommonsense('the correct answer is maybe', 'true', 'llm-adapters', 'boolq')).toEqual({ prediction: '', correct: false })
  })
})

describe('extractAnswerNumber (last number, commas removed)', () => {
  it('takes the last number', () => {
    expect(extractAnswerNumber('3 apples and 4 pears make 7')).toBe(7)
    expect(extractAnswerNumber('The answer is 1,234,567.')).toBe(1234567)
  })
  it('handles negatives, decimals and a trailing dot', () => {
    expect(extractAnswerNumber('it drops to -3.5 degrees')).toBe(-3.5)
    expect(extractAnswerNumber('so 12.')).toBe(12)
    expect(extractAnswerNumber('x-2')).toBe(-2)
  })
  it('splits "1.2.3" the way the regex does and ignores a lone minus', () => {
    // matches "1.2" then "3"
    expect(extractAnswerNumber('version 1.2.3')).toBe(3)
    expect(extractAnswerNumber('5 - -')).toBe(5)
  })
  it('returns Infinity when there is no number', () => {
    expect(extractAnswerNumber('no digits here - at all')).toBe(Infinity)
    expect(extractAnswerNumber('')).toBe(Infinity)
  })
})

describe('extractAnswerLetter (first A-E)', () => {
  it('returns the first capital A-E anywhere, even inside words', () => {
    expect(extractAnswerLetter('The answer is C')).toBe('C')
    expect(extractAnswerLetter('  so (D) it is')).toBe('D')
    expect(extractAnswerLetter('Each option...B')).toBe('E')
    expect(extractAnswerLetter('answer: b, f, G')).toBe('')
  })
})

describe('isFloat / pyFloat (Python float())', () => {
  it('accepts what Python accepts', () => {
    for (const s of ['576.0', ' -3 ', '+.5', '1e5', '2.', '1_000', 'inf', '-Infinity', 'nan']) expect(isFloat(s), s).toBe(true)
    expect(pyFloat('1_000')).toBe(1000)
    expect(pyFloat('-inf')).toBe(-Infinity)
  })
  it('rejects letters and malformed numbers', () => {
    for (const s of ['A', 'E', '', '1.2.3', '1__0', '_1', '0x10', '1e']) expect(isFloat(s), s).toBe(false)
  })
})

describe('math scoring', () => {
  const prompt = '### Instruction:\nHow many?\n\n### Response:\n'
  it('numeric gold: last number within 0.001', () => {
    expect(scoreMath(`${prompt}He needs 24 * 24 = 576 tiles. The answer is 576`, '576.0')).toEqual({ prediction: 576, correct: true })
    expect(scoreMath(`${prompt}0.1666`, '0.166666').correct).toBe(true)
    expect(scoreMath(`${prompt}0.168`, '0.166666').correct).toBe(false)
    expect(scoreMath(`${prompt}The answer is 576. Next question: 3`, '576.0').correct).toBe(false)
  })
  it('numeric gold with no number generated is wrong (Infinity)', () => {
    expect(scoreMath(`${prompt}I do not know`, '5.0')).toEqual({ prediction: Infinity, correct: false })
  })
  it('only reads text after "### Response:"', () => {
    expect(scoreMath('### Instruction:\nWhat is 7?\n\n### Response:\nno idea', '7.0').correct).toBe(false)
    expect(scoreMath('no trigger 7', '7.0').correct).toBe(false)
  })
  it('letter gold (AQuA): first A-E of the response', () => {
    expect(scoreMath(`${prompt}The answer is B`, 'B')).toEqual({ prediction: 'B', correct: true })
    // the LLM-Adapters rule is literal: the "A" of "Answer" is taken first
    expect(scoreMath(`${prompt}Answer: B`, 'B')).toEqual({ prediction: 'A', correct: false })
    expect(scoreMath(`${prompt}none of them`, 'C')).toEqual({ prediction: '', correct: false })
  })
  it('scoreGeneration dispatches on the task kind', () => {
    expect(scoreGeneration('commonsense', 'q\nthe correct answer is answer3', 'answer3').correct).toBe(true)
    expect(scoreGeneration('math', `${prompt}so 10`, '10.0').correct).toBe(true)
  })
})
