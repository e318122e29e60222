/**
 * `loadReft(dir, model)`: an adapter from reft's checkpoint format or from a pyreft-saved
 * directory (`config.json` + `intkey_*.bin`). reft checkpoints carry the full TS config;
 * pyreft ones do not record positions, so `options.positions` (default `'l1'`, the quickstart's
 * last prompt token) and `options.tied` say how prompts are positioned at generation time.
 */
import { resolvePositions, type Component, type InterventionKind, type Positions, type ResolvedInterventionConfig } from './config.js'
import { ReftError } from './errors.js'
import type { Model } from './model.js'
import { callAsync, native } from './native.js'
import { ReftModel } from './reft-model.js'

/** Options of {@link loadReft}. */
export interface LoadReftOptions {
  /** Also restore the AdamW state (to resume training). @defaultValue `false` */
  withOptimizer?: boolean
  /** Positions for adapters that do not record them (pyreft). @defaultValue `'l1'` */
  positions?: Positions | string
  /** Whether such an adapter shares weights between prefix and suffix. @defaultValue `true` */
  tied?: boolean
}

/** Loads an adapter directory onto `model`. */
export async function loadReft(dir: string, model: Model, options: LoadReftOptions = {}): Promise<ReftModel> {
  const handle = await callAsync(() => native().loadReft(model.handle, dir, options.withOptimizer ?? false))
  const meta = handle.metadata()
  if (meta !== null) {
    const parsed = JSON.parse(meta) as { config?: ResolvedInterventionConfig }
    if (parsed.config !== undefined) return new ReftModel(model, handle, parsed.config)
  }
  const specs = handle.specs()
  const first = specs[0]
  if (first === undefined) throw new ReftError('ERR_FORMAT', `${dir} holds no interventions`)
  const positions = resolvePositions(options.positions ?? 'l1')
  const tied = options.tied ?? true
  const perLayer = !tied && positions.first > 0 && positions.last > 0 ? 2 : 1
  const config: ResolvedInterventionConfig = {
    kind: first.kind as InterventionKind,
    layers: [...new Set(specs.map((s) => s.layer))],
    component: (first.component ?? 'block_output') as Component,
    positions,
    rank: first.rank,
    tied,
    dropout: first.dropout ?? 0,
    activation: 'linear',
    addBias: first.addBias ?? false,
    shareWeights: tied,
    perLayer,
    numInterventions: specs.length,
  }
  return new ReftModel(model, handle, config)
}
