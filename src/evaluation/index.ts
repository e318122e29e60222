/** The evaluation harness: the paper's task data and templates, pyreft's scoring, reports, and the local instruction-following evaluation. */
export { resolveDataDir, parseRecords, defaultDataDir, type DataDirOptions } from './data-dir.js'
export {
  commonsenseTrigger,
  mathTrigger,
  triggerFor,
  commonsensePrompt,
  commonsenseTarget,
  mathPrompt,
  promptFor,
  trainingExample,
  type TaskKind,
  type TaskRecord,
} from './templates.js'
export {
  extractOutput,
  extractAnswerNumber,
  extractAnswerLetter,
  pyFloat,
  isFloat,
  commonsenseLabelPatterns,
  scoreCommonsense,
  scoreMath,
  scoreGeneration,
  type CommonsenseScoring,
  type Score,
} from './extract.js'
export {
  tasks,
  taskGroups,
  defaultMaxNewTokens,
  resolveTask,
  parseTaskList,
  loadTask,
  type TaskSpec,
  type EvalExample,
  type LoadTaskOptions,
} from './tasks.js'
export {
  trainingSets,
  resolveTrainingSet,
  loadTrainingSet,
  type TrainingSetSpec,
  type TrainingSet,
  type LoadTrainingSetOptions,
} from './training-sets.js'
export { signTestP, wilsonInterval } from './stats.js'
export { readResumeFile, appendResults } from './resume.js'
export type { EvalExampleResult, TaskResult } from './results.js'
export { evaluateTask, type TextGenerator, type EvalProgressEvent, type EvaluateTaskOptions } from './evaluate.js'
export { writeReport, formatReportTable, reportObject, type ReportMeta, type ReportFiles } from './report.js'
export { createEvalProgressReporter, type EvalProgressReporter, type EvalProgressOptions } from './progress.js'
export {
  splitHeldOut,
  loadUltraFeedbackSplit,
  loadAlpacaEvalPrompts,
  parsePromptSource,
  ultrafeedbackFile,
  alpacaEvalFile,
  defaultHeldOut,
  type InstructRecord,
  type PromptSource,
  type UltraFeedbackSplitOptions,
  type AlpacaEvalOptions,
} from './instruct-data.js'
export { openBaseForward, withoutPositions, type BatchForward, type BaseForward } from './base-forward.js'
export {
  evaluateResponseLoss,
  itemLosses,
  summarizeLosses,
  type ResponseLossResult,
  type ResponseLossStats,
  type ResponseLossOptions,
  type ResponseLossProgress,
  type ExampleLoss,
  type ItemLoss,
} from './response-loss.js'
export {
  createLogitJudge,
  formatJudgePrompt,
  judgeLabelIds,
  labelLogProbs,
  defaultJudgeTemplate,
  defaultJudgeSystemPrompt,
  defaultAnswerPrefix,
  type PairJudge,
  type LogitJudge,
  type LogitJudgeOptions,
  type JudgeVerdict,
  type JudgeLabelIds,
} from './judge.js'
export {
  comparePairwise,
  comparePair,
  pairOutcome,
  summarizePairwise,
  type PairwisePrompt,
  type PairwiseComparison,
  type PairwiseSummary,
  type PairwiseOptions,
  type PairwiseProgress,
  type PairOutcome,
} from './pairwise.js'
export {
  evaluateInstructionFollowing,
  generationPrompt,
  instructionExample,
  instructFormats,
  promptFormatFor,
  type InstructFormat,
  type InstructEvalOptions,
  type InstructProgress,
} from './instruct.js'
export {
  formatInstructReport,
  instructReportObject,
  writeInstructReport,
  measurementStatements,
  type InstructEvalResult,
  type InstructReportMeta,
} from './instruct-report.js'
