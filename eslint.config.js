// Type-aware lint for the whole tree. The Raft core (metadata/raft/core) and the other pure
// decision modules may not touch I/O, clocks or randomness: that is what lets the
// deterministic simulator replay any run from its seed.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const pureModuleRules = {
  'no-restricted-imports': ['error', {
    // node:path's string functions (join, basename, …) are pure; resolve and relative read the cwd.
    paths: [{ name: 'node:path', importNames: ['default', 'resolve', 'relative', 'toNamespacedPath'], message: 'pure core: resolve/relative read the working directory' }],
    patterns: [
      { group: ['node:*', '!node:path', 'fs', 'net', 'http', 'https', 'dgram', 'child_process', 'worker_threads', 'os', 'crypto', 'timers', 'perf_hooks'], message: 'pure core: no I/O, clock or randomness (inject it)' },
      { group: ['@grpc/*', 'classic-level', 'abstract-level', 'pino', 'pino-*', 'undici', 'prom-client', 'fuse-native'], message: 'pure core: no I/O libraries' },
    ],
  }],
  'no-restricted-globals': ['error',
    { name: 'setTimeout', message: 'pure core: time comes from tick()' },
    { name: 'setInterval', message: 'pure core: time comes from tick()' },
    { name: 'setImmediate', message: 'pure core: no scheduling' },
    { name: 'performance', message: 'pure core: no clock' },
    { name: 'process', message: 'pure core: no process access' },
    { name: 'crypto', message: 'pure core: randomness is injected' },
  ],
  'no-restricted-properties': ['error',
    { object: 'Math', property: 'random', message: 'pure core: randomness is injected' },
    { object: 'Date', property: 'now', message: 'pure core: no clock' },
  ],
  'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date']", message: 'pure core: no clock' }],
};

/**
 * Every folder or file whose README says it is pure, one entry per line (so that lists from
 * parallel branches merge line by line). Adding a pure folder here is what makes its README true.
 */
const pureModules = [
  'metadata/raft/core/**/*.ts',
  'metadata/state/logic/**/*.ts',
  'dataplane/logic/**/*.ts',
  'dataplane/core/**/*.ts',
  'chaos/linearizability/**/*.ts',
  'vfs/data/layout.ts',
  'vfs/manager/plan.ts',
  'cli/daemon/config.ts',
  'cli/lib/size.ts',
  'cli/lib/labels.ts',
  'cli/lib/address.ts',
  'cli/lib/errors.ts',
  'cli/lib/admin-routes.ts',
  'proto/limits.ts',
  'dataplane/backup/logic/**/*.ts',
  'proto/auth.ts',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '**/*.cjs', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  { files: pureModules, rules: pureModuleRules },
  { files: ['test/**/*.ts', 'chaos/**/*.ts'], rules: { '@typescript-eslint/no-unused-expressions': 'off' } },
);
