import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // End-to-end files open real sockets and child processes; two cores, so two forks.
    pool: 'forks',
    maxWorkers: 2,
  },
});
