import { defineConfig } from 'vitest/config';

// Three tiers (docs/conventions.md §13): unit tests next to the source need no control
// plane; integration and e2e tests share one real kube-apiserver + etcd booted
// once per run by the globalSetup.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            '{core,lifecycle,kube,operator,webhook,broker,authority,audit,controller,cli,scripts,bench,observability,samples,sdk}/**/*.test.ts',
          ],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
          pool: 'threads',
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts', 'e2e/**/*.e2e.test.ts'],
          // The real-node suite has its own project (below) until it has proven reliable.
          exclude: ['**/node_modules/**', 'e2e/cluster/**'],
          globalSetup: ['e2e/harness/global-setup.ts'],
          // Each file works in its own namespace; two workers match the 2-core machines.
          pool: 'forks',
          maxWorkers: 2,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // A real single-node cluster per file (e2e/cluster): `make test-cluster`, as root.
          name: 'cluster',
          include: ['e2e/cluster/**/*.e2e.test.ts'],
          exclude: ['**/node_modules/**'],
          pool: 'forks',
          maxWorkers: 1,
          testTimeout: 300_000,
          hookTimeout: 1_800_000,
        },
      },
    ],
  },
});
