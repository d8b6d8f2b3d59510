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
const slowTimeout = '<rootDir>/test/support/slow-layer-timeout.ts';

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/test/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      setupFilesAfterEnv: [slowTimeout],
      testMatch: ['<rootDir>/src/**/*.itest.ts', '<rootDir>/test/**/*.itest.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    // The slow layers get a realistic default timeout (test/support/slow-layer-timeout.ts).
    { ...common, displayName: 'netns', setupFilesAfterEnv: [slowTimeout], testMatch: ['<rootDir>/src/**/*.netns.ts', '<rootDir>/test/**/*.netns.ts'] },
    { ...common, displayName: 'lab', setupFilesAfterEnv: [slowTimeout], testMatch: ['<rootDir>/src/**/*.lab.ts', '<rootDir>/test/**/*.lab.ts'] },
  ],
};
