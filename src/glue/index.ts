/** GLUE for the paper's RoBERTa experiments: TSV files, task specs, metrics, the split protocol, recipes. */
export { parseTsv, columnIndex, type TsvOptions, type TsvTable } from './tsv.js'
export {
  glueTasks,
  glueTaskNames,
  resolveGlueTask,
  glueFile,
  loadGlueTask,
  parseGlueLabel,
  type GlueTaskName,
  type GlueSplit,
  type GlueMetricName,
  type GlueTaskSpec,
  type GlueExample,
  type LoadGlueTaskOptions,
} from './tasks.js'
export {
  accuracy,
  binaryF1,
  matthewsCorrelation,
  pearson,
  spearman,
  averageRanks,
  computeGlueMetrics,
  glueMetricFunctions,
  glueLabelsFromLogits,
  type GlueMetrics,
} from './metrics.js'
export { glueEvalSize, splitGlueValidation, glueLargeSplit, glueEvalCap, type GlueValidationSplit } from './split.js'
export {
  glueRecipes,
  glueRecipe,
  glueRecipeIntervention,
  glueRecipeCommon,
  type GlueRecipe,
  type GlueRecipeMethod,
} from './recipes.js'
export { evaluateGlue, isBetterGlueScore, type GlueEvaluation, type EvaluateGlueOptions, type GlueClassifier } from './evaluate.js'
export { loadGlueSplits, type GlueSplits, type GlueSplitsOptions } from './protocol.js'
export { bootstrapInterval, pairedBootstrap, type BootstrapOptions, type PairedDifference } from './bootstrap.js'
