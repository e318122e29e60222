/**
 * `reft generate`: completions from the base model or an adapter, greedy unless a sampling flag
 * is given; `--stream` prints one prompt's text as it is generated. Ctrl-C aborts (ERR_ABORTED).
 */
import { formatPrompt } from '../datasets/instruction.js'
import { invalidConfig } from '../errors.js'
import { loadReft } from '../load-reft.js'
import type { GenerateOptions } from '../reft-model.js'
import { checkOneOf } from '../validate.js'
import { type CliIo, int, num, openModel, parseFlags, placement, placementFlags, placementHelp, str } from './common.js'
import { cliFormats } from './train-config.js'

const s = { type: 'string' } as const
const b = { type: 'boolean' } as const

/** Flags of `reft generate`. */
export const generateFlags = {
  model: s, adapter: s, chat: b, format: s, 'max-new-tokens': s, temperature: s, 'top-p': s, 'top-k': s, seed: s, stream: b, json: b,
  ...placementFlags,
}

export const generateHelp = `usage: reft generate [--model PATH] [--adapter DIR] [flags] PROMPT...

Generates a completion for each PROMPT (greedy by default) and prints one per line.

  --model PATH           HF directory, .gguf file or hf:org/name (default: SmolLM2-135M-Instruct)
${placementHelp}  --adapter DIR          apply a saved adapter (reft checkpoint or pyreft directory)
  --chat                 format prompts with the model's chat template
  --format F             raw | alpaca | no_header (default raw)
  --max-new-tokens N     (default 64)
  --temperature T        sample instead of greedy decoding (with --top-p, --top-k, --seed)
  --top-p P              nucleus mass (default 1)
  --top-k K              keep the K most likely tokens (default 0 = all)
  --seed S               sampling seed (default 0)
  --stream               print the text of one PROMPT as it is generated
  --json                 print [{"prompt", "text"}] as JSON
`

/** Runs `reft generate`. */
export async function generateCommand(args: string[], io: CliIo): Promise<void> {
  const p = parseFlags(args, generateFlags, true)
  const prompts = p.positionals
  if (prompts.length === 0) throw invalidConfig('PROMPT', 'give at least one prompt')
  if (p.values.stream === true && prompts.length !== 1) throw invalidConfig('--stream', 'streams exactly one prompt')
  const format = checkOneOf('--format', str(p, 'format') ?? 'raw', cliFormats)
  const chat = p.values.chat === true
  if (chat && format !== 'raw') throw invalidConfig('--format', '--chat uses the chat template; drop --format')
  const texts = prompts.map((prompt) => formatPrompt({ prompt }, { kind: format }))
  const sampling = ['temperature', 'top-p', 'top-k'].some((k) => p.values[k] !== undefined)
  const controller = new AbortController()
  const options: GenerateOptions = {
    maxNewTokens: int(p, 'max-new-tokens'),
    greedy: !sampling,
    temperature: num(p, 'temperature'),
    topP: num(p, 'top-p'),
    topK: int(p, 'top-k'),
    seed: int(p, 'seed'),
    chat,
    signal: controller.signal,
  }

  const model = await openModel(str(p, 'model'), io, placement(p))
  const adapterDir = str(p, 'adapter')
  const onSigint = (): void => controller.abort()
  process.once('SIGINT', onSigint)
  try {
    const target = adapterDir === undefined ? model : await loadReft(adapterDir, model)
    try {
      if (p.values.stream === true) {
        for await (const piece of target.generateStream(texts[0]!, options)) io.out(piece)
        io.out('\n')
        return
      }
      const result = await target.generate(texts, options)
      if (p.values.json === true) io.out(`${JSON.stringify(prompts.map((prompt, i) => ({ prompt, text: result.texts[i] })), null, 2)}\n`)
      else for (const t of result.texts) io.out(`${t}\n`)
    } finally {
      if (target !== model) target.dispose()
    }
  } finally {
    process.off('SIGINT', onSigint)
    model.dispose()
  }
}
