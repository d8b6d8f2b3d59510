// Four test layers as jest projects, selected by file suffix (STYLE.md):
//   unit *.test.ts, integration *.itest.ts (real kube-apiserver), netns *.netns.ts, lab *.lab.ts.
// ts-jest runs the TypeScript as ESM (docs/adr/0001-typescript-esm-and-jest.md).
const common = {
  preset: 'ts-jest/presets/default-esm',
  extensionsToTreatAsEsm: ['.ts'],
  testEnvironment: 'node',
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }] },
};
export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/test/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testTimeout: 60_000,
      testMatch: ['<rootDir>/src/**/*.itest.ts', '<rootDir>/test/**/*.itest.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    // Real kernels, processes and traffic on a 2-core machine: a test's own deadlines (derived from
    // lease settings) decide; jest's 5 s default would only add load-dependent failures.
    { ...common, displayName: 'netns', testTimeout: 120_000, testMatch: ['<rootDir>/src/**/*.netns.ts', '<rootDir>/test/**/*.netns.ts'] },
    { ...common, displayName: 'lab', testTimeout: 300_000, testMatch: ['<rootDir>/src/**/*.lab.ts', '<rootDir>/test/**/*.lab.ts'] },
  ],
};
