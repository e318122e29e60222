/**
 * Instruction examples and prompt formatting: raw text, pyreft's Alpaca templates, or a model's
 * Jinja chat template rendered with `@huggingface/jinja`.
 */
import { Template } from '@huggingface/jinja'
import { ReftError, invalidConfig } from '../errors.js'

/** One supervised example: the model sees `prompt` and learns to produce `output`. */
export interface InstructionExample {
  /** The instruction / prompt text (before formatting). */
  prompt: string
  /** The target completion. */
  output: string
  /** Optional extra context; selects the Alpaca `prompt_input` template when non-empty. */
  input?: string
}

/** pyreft `prompt_no_input` (the Alpaca template without an input field). */
export const alpacaPromptNoInput =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n%s\n\n### Response:\n'

/** pyreft `prompt_input` (the Alpaca template with an input field). */
export const alpacaPromptInput =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n'

/** pyreft `no_header_prompt_template`. */
export const noHeaderPrompt = '### Instruction:\n%s\n\n### Response:\n'

/** Options for rendering a chat template. */
export interface ChatTemplateOptions {
  /** The Jinja chat template (e.g. `NativeModelInfo.chatTemplate`). */
  template: string
  /**
   * The BOS token text, exposed to the template as `bos_token`.
   * @defaultValue `''`
   */
  bosToken?: string
  /**
   * The EOS token text, exposed to the template as `eos_token`.
   * @defaultValue `''`
   */
  eosToken?: string
  /** Optional system message placed before the user turn. */
  systemPrompt?: string
  /**
   * Remove a leading `bosToken` from the rendered text, because tokenising with special tokens adds
   * BOS again (the double-BOS pitfall; pyreft strips `<|begin_of_text|>` the same way).
   * @defaultValue `true`
   */
  stripBos?: boolean
}

/** How to turn `InstructionExample.prompt` into model text. */
export type PromptFormat =
  | { kind: 'raw' }
  | { kind: 'alpaca' }
  | { kind: 'no_header' }
  | ({ kind: 'chat' } & ChatTemplateOptions)

const fill = (template: string, ...values: string[]): string => {
  let i = 0
  return template.replace(/%s/g, () => values[i++] ?? '')
}

/** Alpaca prompt: `prompt_input` when `input` is a non-empty string, else `prompt_no_input`. */
export function alpacaPrompt(instruction: string, input?: string): string {
  return input !== undefined && input !== '' ? fill(alpacaPromptInput, instruction, input) : fill(alpacaPromptNoInput, instruction)
}

const compiled = new Map<string, Template>()

function compile(source: string): Template {
  let t = compiled.get(source)
  if (t === undefined) {
    try {
      t = new Template(source)
    } catch (e) {
      throw new ReftError('ERR_FORMAT', `chat template does not parse: ${(e as Error).message}`, { cause: e })
    }
    compiled.set(source, t)
  }
  return t
}

/**
 * Render one user turn through a chat template with `add_generation_prompt: true`, so the text
 * ends where the assistant's reply begins.
 */
export function renderChatPrompt(content: string, options: ChatTemplateOptions): string {
  if (typeof options.template !== 'string' || options.template === '') {
    throw invalidConfig('template', 'a chat template string is required')
  }
  const bos = options.bosToken ?? ''
  const messages: { role: string; content: string }[] = []
  if (options.systemPrompt !== undefined) messages.push({ role: 'system', content: options.systemPrompt })
  messages.push({ role: 'user', content })
  let text: string
  try {
    text = compile(options.template).render({
      messages,
      add_generation_prompt: true,
      bos_token: bos,
      eos_token: options.eosToken ?? '',
    })
  } catch (e) {
    throw new ReftError('ERR_FORMAT', `chat template failed to render: ${(e as Error).message}`, { cause: e })
  }
  if ((options.stripBos ?? true) && bos !== '' && text.startsWith(bos)) text = text.slice(bos.length)
  return text
}

/** Format an example's prompt (its `input` is used by the Alpaca format only). */
export function formatPrompt(example: Pick<InstructionExample, 'prompt' | 'input'>, format: PromptFormat = { kind: 'raw' }): string {
  switch (format.kind) {
    case 'raw':
      return example.prompt
    case 'alpaca':
      return alpacaPrompt(example.prompt, example.input)
    case 'no_header':
      return fill(noHeaderPrompt, example.prompt)
    case 'chat':
      return renderChatPrompt(example.prompt, format)
    default:
      throw invalidConfig('format.kind', `unknown prompt format ${JSON.stringify((format as { kind: unknown }).kind)}`)
  }
}
