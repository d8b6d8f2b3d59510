// Lint keeps the pure folders pure: src/api, src/model, src/plan and the renderers may not import
// process, fs, child processes, client-node, execa or pino (STYLE.md, "Where side effects live").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = [
  'node:fs', 'fs', 'node:fs/promises', 'fs/promises', 'node:child_process', 'child_process',
  'node:net', 'net', 'node:http', 'http', 'node:https', 'https', 'node:process', 'process',
  '@kubernetes/client-node', 'execa', 'pino', 'prom-client',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'jest.config.js', 'eslint.config.js', 'test/testenv/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/api/**/*.ts', 'src/model/**/*.ts', 'src/plan/**/*.ts', 'src/dataplane/render-*.ts', 'src/keepalived/render*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.netns.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: ioModules.map((name) => ({ name, message: 'pure module: no I/O imports' })) }],
      'no-restricted-globals': ['error', { name: 'process', message: 'pure module: no process' }],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'inject a Clock' }],
    },
  },
  {
    // Values of client-node only through src/cluster/k8s.ts, which the build bundles (the package
    // itself loads 65 MiB of generated code); types may be imported from the package directly.
    files: ['src/**/*.ts'],
    ignores: ['src/cluster/k8s.ts', 'src/**/testing/**', '**/*.test.ts', '**/*.itest.ts', '**/*.netns.ts', '**/*.lab.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: [{ name: '@kubernetes/client-node', allowTypeImports: true, message: 'import client-node values from src/cluster/k8s.js (bundled by the build)' }] }],
    },
  },
  {
    files: ['scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', URL: 'readonly', console: 'readonly' } },
  },
  {
    files: ['test/**/*.ts', 'src/**/*.test.ts', 'src/**/*.itest.ts', 'src/**/*.netns.ts', 'src/**/*.lab.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
