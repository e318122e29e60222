import { describe, expect, it } from 'vitest'
import {
  alpacaPrompt,
  alpacaPromptInput,
  alpacaPromptNoInput,
  formatPrompt,
  renderChatPrompt,
} from '../src/datasets/instruction.js'

// TinyLlama / Zephyr-style template (as shipped in tokenizer_config.json).
const zephyr =
  "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n" +
  "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n" +
  "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n" +
  "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"

const llama2 =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}"

describe('Alpaca templates (pyreft prompt_no_input / prompt_input)', () => {
  it('has the exact pyreft strings', () => {
    expect(alpacaPromptNoInput).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Response:\n',
    )
    expect(alpacaPromptInput).toBe(
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n',
    )
  })

  it('fills instruction and input', () => {
    expect(alpacaPrompt('Add 2+2')).toBe(alpacaPromptNoInput.replace('%s', 'Add 2+2'))
    expect(alpacaPrompt('Translate', 'bonjour')).toContain('### Instruction:\nTranslate\n\n### Input:\nbonjour\n\n### Response:\n')
    expect(alpacaPrompt('Translate', '')).toBe(alpacaPromptNoInput.replace('%s', 'Translate'))
    // A literal %s inside the instruction is not re-substituted.
    expect(alpacaPrompt('say %s', 'x')).toContain('### Instruction:\nsay %s\n\n### Input:\nx\n')
  })
})

describe('chat templates', () => {
  it('renders a user turn with the generation prompt', () => {
    expect(renderChatPrompt('hi', { template: zephyr, eosToken: '</s>' })).toBe('<|user|>\nhi</s>\n<|assistant|>\n')
  })

  it('strips a leading BOS by default and keeps it when asked', () => {
    const o = { template: llama2, bosToken: '<s>' }
    expect(renderChatPrompt('hi', o)).toBe('[INST] hi [/INST]')
    expect(renderChatPrompt('hi', { ...o, stripBos: false })).toBe('<s>[INST] hi [/INST]')
  })

  it('adds a system turn', () => {
    expect(renderChatPrompt('hi', { template: zephyr, eosToken: '</s>', systemPrompt: 'be nice' })).toBe(
      '<|system|>\nbe nice</s>\n<|user|>\nhi</s>\n<|assistant|>\n',
    )
  })

  it('reports broken templates as ERR_FORMAT and a missing one as ERR_INVALID_CONFIG', () => {
    expect(() => renderChatPrompt('hi', { template: '{% for x in %}' })).toThrow(expect.objectContaining({ code: 'ERR_FORMAT' }))
    expect(() => renderChatPrompt('hi', { template: '' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }))
  })
})

describe('formatPrompt', () => {
  it('dispatches on kind', () => {
    const ex = { prompt: 'Q?', input: 'ctx' }
    expect(formatPrompt(ex)).toBe('Q?')
    expect(formatPrompt(ex, { kind: 'alpaca' })).toBe(alpacaPrompt('Q?', 'ctx'))
    expect(formatPrompt(ex, { kind: 'no_header' })).toBe('### Instruction:\nQ?\n\n### Response:\n')
    expect(formatPrompt(ex, { kind: 'chat', template: zephyr, eosToken: '</s>' })).toBe('<|user|>\nQ?</s>\n<|assistant|>\n')
    expect(() => formatPrompt(ex, { kind: 'nope' } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }))
  })
})
