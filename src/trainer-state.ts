/**
 * Trainer checkpoints: `checkpoint-<step>/` holds whatever `reft.save(dir, true)` writes plus
 * `trainer_state.json` (step, batch cursor, history, seed, early-stopping state).
 *
 * A checkpoint is written into a hidden temporary directory next to its final place and renamed
 * when complete, so a crash or error never leaves a partial `checkpoint-<step>/`.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ReftError, toReftError } from './errors.js'

export { checkpointName, trainerStateFile, trainerStateVersion, type TrainerState } from './trainer-state-format.js'
import { checkpointName, trainerStateFile, trainerStateVersion, type TrainerState } from './trainer-state-format.js'

/**
 * Atomically write `outputDir/checkpoint-<step>/`: `save(tmpDir)` fills a temporary directory,
 * the state file is added, and the directory is renamed into place (replacing an older one of
 * the same name). On failure the temporary directory is removed and the error rethrown.
 */
export async function writeCheckpoint(
  outputDir: string,
  state: TrainerState,
  save: (dir: string) => Promise<void>,
): Promise<string> {
  const finalDir = join(outputDir, checkpointName(state.step))
  const tmpDir = join(outputDir, `.${checkpointName(state.step)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    await mkdir(tmpDir, { recursive: true })
    await save(tmpDir)
    await writeFile(join(tmpDir, trainerStateFile), JSON.stringify(state, null, 2) + '\n')
    await rm(finalDir, { recursive: true, force: true })
    await rename(tmpDir, finalDir)
    return finalDir
  } catch (e) {
    await rm(tmpDir, { recursive: true, force: true }).catch(() => undefined)
    throw toReftError(e)
  }
}

/** Read and check `dir/trainer_state.json` (ERR_IO when missing, ERR_FORMAT when malformed). */
export async function readTrainerState(dir: string): Promise<TrainerState> {
  const file = join(dir, trainerStateFile)
  let text: string
  try {
    if (!(await stat(dir)).isDirectory()) throw new ReftError('ERR_IO', `${dir} is not a directory`)
    text = await readFile(file, 'utf8')
  } catch (e) {
    if (e instanceof ReftError) throw e
    throw new ReftError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e })
  }
  let state: TrainerState
  try {
    state = JSON.parse(text) as TrainerState
  } catch (e) {
    throw new ReftError('ERR_FORMAT', `${file} is not valid JSON`, { cause: e })
  }
  const ints: (keyof TrainerState)[] = ['step', 'epoch', 'stepInEpoch', 'totalSteps', 'seed', 'datasetSize', 'batchSize', 'gradientAccumulation']
  const bad = ints.find((k) => !Number.isInteger(state[k]))
  if (state.formatVersion !== trainerStateVersion || bad !== undefined || !Array.isArray(state.history?.steps)) {
    throw new ReftError('ERR_FORMAT', `${file}: unsupported or malformed trainer state${bad ? ` (${bad})` : ''}`)
  }
  return state
}
