/**
 * What a kind of search brings to the shared loop in search.ts. A generation search (decoder,
 * `data: { trainingSet }` or `{ examples }`) and a GLUE search (encoder, `data: { glue }`) differ
 * in their data, how a trial trains and scores, and what the test split is; the rungs, the
 * trials file, the selection, the default configuration's run and the reports are the same.
 */
import type { DevMetric } from './events.js'
import type { Rung } from './halving.js'
import type { TestComparison } from './glue-test.js'
import type { SearchReport } from './report.js'
import type { ResolvedSearchSpace, TrialConfig } from './space.js'
import type { SearchTestRecord, TrialMeasurement, TrialsFile } from './trials-file.js'

/** An adapter directory: absolute, and relative to the output directory. */
export interface AdapterPath {
  abs: string
  rel: string
}

/** A resolved search of one kind, ready to run. */
export interface SearchPlan {
  space: ResolvedSearchSpace
  /** Trial configs by id. */
  configs: TrialConfig[]
  rungs: Rung[]
  devMetric: DevMetric
  /** The configuration `compareDefault` trains. */
  defaultConfig: TrialConfig
  /** The trials-file header's settings (what changes which trials run or what they score). */
  settings: Record<string, unknown>
  /** The data as the report describes it. */
  data: SearchReport['data']
  /** Set for GLUE searches. */
  glue?: SearchReport['glue']
  /** Trains one run of `config` at `budget` and scores it on the dev slice; `saveDir` receives the adapter. */
  measure(config: TrialConfig, budget: number, saveDir?: AdapterPath): Promise<TrialMeasurement>
  /** Scores an adapter on the test split(s), reusing the trials file's matching records; `[]` when no test was asked for. */
  test(file: TrialsFile, which: 'selected' | 'default', config: TrialConfig, adapterDir: string): Promise<SearchTestRecord[]>
  /** Selected-versus-default comparisons of the test records. */
  compare(test: readonly SearchTestRecord[]): TestComparison[]
}
