// A diagnostic for operators and benchmarks: when SMARTNAT_CPU_PROFILE_DIR is set, the agent runs
// the V8 CPU profiler from start to shutdown and writes `agent-NAME-PID.cpuprofile` there (open it
// in Chrome DevTools or speedscope). Node 20 refuses --cpu-prof in NODE_OPTIONS, so agents started
// by other tools (the lab) cannot be profiled otherwise. Guarantees: a failure to profile is
// logged and never stops the agent. Does nothing when the variable is unset.
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

export interface CpuProfile {
  /** Stops the profiler and writes the profile; resolves to its path. */
  stop(): Promise<string>;
}

export async function startCpuProfile(name: string, dir = process.env.SMARTNAT_CPU_PROFILE_DIR): Promise<CpuProfile | undefined> {
  if (dir === undefined || dir === '') return undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.start');
  return {
    stop: async () => {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      const path = join(dir, `agent-${name}-${process.pid}.cpuprofile`);
      await writeFile(path, JSON.stringify(profile));
      return path;
    },
  };
}
