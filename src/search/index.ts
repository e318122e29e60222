/** Hyperparameter search: space, sampling, successive halving, resumable trials file, reports. */
export {
  defaultSearchSpace,
  defaultGlueSearchSpace,
  searchDimensions,
  resolveSearchSpace,
  parseLayerSet,
  formatLayerSet,
  resolveLayerSet,
  formatPositions,
  gridSize,
  configAt,
  describeConfig,
  type SearchSpace,
  type ResolvedSearchSpace,
  type TrialConfig,
  type LayerSet,
} from './space.js'
export { sampleTrials, sampleIndices, samplingDefaults, type Sampling, type SamplingOptions } from './sampling.js'
export { halvingRungs, defaultEta, formatBudget, budgetSteps, stepsPerEpoch, rankTrials, type HalvingOptions, type Rung, type Ranked } from './halving.js'
export { splitSearchData, devOrder, devSplitDefaults, type SearchData, type SearchSplit, type DevSplitOptions } from './data.js'
export {
  openTrialsFile,
  trialsFileVersion,
  type TrialsFile,
  type TrialsFileRecord,
  type TrialRecord,
  type DefaultRecord,
  type TestRecord,
  type GlueTestRecord,
  type SearchTestRecord,
  type TrialMeasurement,
} from './trials-file.js'
export { splitGlueSearchData, glueDevSources, type GlueDevSource, type GlueSearchData, type GlueSearchSplit, type GlueDevSplitOptions } from './glue-data.js'
export { glueDefaultTrialConfig, glueDefaultScale } from './glue-plan.js'
export { measureGlueTrial, type GlueTrialSettings, type GlueTrialMeasurement } from './glue-trial.js'
export { compareGlueTests, type TestComparison } from './glue-test.js'
export { runRungs, rankRecords, type RungOutcome, type TrialRun, type TrialRunner } from './rungs.js'
export { defaultTrialConfig, type SearchOptions, type SearchTrainOptions, type SearchEvalOptions } from './options.js'
export { search, type SearchResult } from './search.js'
export { writeSearchReport, formatSearchMarkdown, formatTestTable, formatComparison, type SearchReport, type SearchReportFiles } from './report.js'
export { createSearchProgressReporter, type SearchProgressReporter, type SearchProgressOptions } from './progress.js'
export { higherIsBetter, type SearchProgressEvent, type DevMetric } from './events.js'
