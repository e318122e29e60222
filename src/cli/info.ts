/**
 * `reft info MODEL`: architecture, sizes, parameter count, special tokens and whether a chat
 * template exists; `--json` prints the same facts as one JSON object.
 */
import { invalidConfig } from '../errors.js'
import type { Model } from '../model.js'
import { type CliIo, openModel, parseFlags } from './common.js'

export const infoHelp = `usage: reft info [MODEL] [--json]

Prints a model's architecture, layers, hidden size, heads, vocabulary, parameter count, special
tokens and whether it has a chat template. MODEL is an HF directory, a .gguf file or hf:org/name
(default: SmolLM2-135M-Instruct).

  --json                 machine-readable output
`

function describeToken(model: Model, id: number | undefined | null): { id: number; text: string } | null {
  return id === undefined || id === null ? null : { id, text: model.decode([id], false) }
}

/** The facts `reft info` prints. */
export function modelFacts(model: Model): Record<string, unknown> {
  const i = model.info()
  return {
    path: model.path,
    architecture: i.architecture,
    source: i.source,
    numLayers: i.numLayers,
    hiddenSize: i.hiddenSize,
    intermediateSize: i.intermediateSize,
    numHeads: i.numHeads,
    numKvHeads: i.numKvHeads,
    vocabSize: i.vocabSize,
    maxPositionEmbeddings: i.maxPositionEmbeddings,
    numParameters: i.numParameters,
    specialTokens: {
      bos: describeToken(model, i.bosTokenId),
      eos: i.eosTokenIds.map((id) => describeToken(model, id)),
      pad: describeToken(model, i.padTokenId),
    },
    hasChatTemplate: typeof i.chatTemplate === 'string' && i.chatTemplate !== '',
  }
}

/** Runs `reft info`. */
export async function infoCommand(args: string[], io: CliIo): Promise<void> {
  const p = parseFlags(args, { json: { type: 'boolean' } }, true)
  if (p.positionals.length > 1) throw invalidConfig('MODEL', 'reft info takes one model')
  const model = await openModel(p.positionals[0], io)
  try {
    const f = modelFacts(model)
    if (p.values.json === true) {
      io.out(`${JSON.stringify(f, null, 2)}\n`)
      return
    }
    const i = model.info()
    const tok = (t: { id: number; text: string } | null): string => (t === null ? '-' : `${JSON.stringify(t.text)} (${t.id})`)
    const special = f.specialTokens as { bos: { id: number; text: string } | null; eos: ({ id: number; text: string } | null)[]; pad: { id: number; text: string } | null }
    const rows: [string, string][] = [
      ['model', model.path],
      ['architecture', `${i.architecture} (${i.source})`],
      ['layers', String(i.numLayers)],
      ['hidden size', `${i.hiddenSize} (intermediate ${i.intermediateSize})`],
      ['heads', `${i.numHeads} (kv ${i.numKvHeads})`],
      ['vocabulary', String(i.vocabSize)],
      ['context', String(i.maxPositionEmbeddings)],
      ['parameters', i.numParameters.toLocaleString('en-US')],
      ['bos', tok(special.bos)],
      ['eos', special.eos.map(tok).join(', ') || '-'],
      ['pad', tok(special.pad)],
      ['chat template', f.hasChatTemplate === true ? 'yes' : 'no'],
    ]
    for (const [k, v] of rows) io.out(`${k.padEnd(14)} ${v}\n`)
  } finally {
    model.dispose()
  }
}
