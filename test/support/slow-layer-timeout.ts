// Jest setup for the slow layers (integration, netns, lab): real API servers, kernels, processes
// and traffic on a 2-core machine. A test's own deadlines (derived from lease settings) decide;
// jest's 5 s default would only add load-dependent failures (a timeout midway through a traffic
// test left a routing rule deleted for the next test). `testTimeout` is global-only in jest 29.
import { jest } from '@jest/globals';

jest.setTimeout(300_000);
