#!/usr/bin/env node
/**
 * The `reft` executable (package `bin`). Everything lives in `cli/main.ts`; this file only runs
 * it and sets the exit status, letting pending output flush before the process ends.
 */
import { main } from './cli/main.js'

process.exitCode = await main(process.argv.slice(2))
