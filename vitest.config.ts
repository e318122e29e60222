import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    // The native addon is not fork-safe across worker threads; one process per file.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
})
