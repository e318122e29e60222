/**
 * `loadReft(dir, model)`: an adapter from reft's checkpoint format or from a pyreft-saved
 * directory (`config.json` + `intkey_*.bin`), on the backend of `model`. reft checkpoints carry
 * the full TS config; pyreft ones do not record positions, so `options.positions` (default `'l1'`,
 * the quickstart's last prompt token) and `options.tied` say how prompts are positioned at
 * generation time. {@link reftFromHandle} is the backend-independent half (the browser entry
 * uses it with in-memory files).
 */
import { resolvePositions, type Component, type InterventionKind, type Positions, type ResolvedInterventionConfig } from './config.js'
import { callAsync } from './call.js'
import { ReftError } from './errors.js'
import type { Model } from './model.js'
import type { NativeReft } from './native-api.js'
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
  const backend = model.backend
  if (backend.loadReft === undefined) throw new ReftError('ERR_IO', `cannot read ${dir}: this backend has no file system; load the checkpoint's files instead`)
  const load = backend.loadReft.bind(backend)
  const handle = await callAsync(() => load(model.handle, dir, options.withOptimizer ?? false))
  return reftFromHandle(model, handle, options, dir)
}

/** A `ReftModel` over a loaded checkpoint handle: its stored config, or one rebuilt from its specs. */
export function reftFromHandle(model: Model, handle: NativeReft, options: LoadReftOptions, where: string): ReftModel {
  const meta = handle.metadata()
  if (meta !== null) {
    const parsed = JSON.parse(meta) as { config?: ResolvedInterventionConfig }
    if (parsed.config !== undefined) return new ReftModel(model, handle, parsed.config)
  }
  const specs = handle.specs()
  const first = specs[0]
  if (first === undefined) throw new ReftError('ERR_FORMAT', `${where} holds no interventions`)
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
