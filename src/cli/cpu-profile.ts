// A diagnostic for operators and benchmarks: when SMARTNAT_CPU_PROFILE_DIR is set, the agent runs
// the V8 CPU profiler from start and writes `agent-NAME-PID-N.cpuprofile` there on SIGUSR2 (then
// profiles on) and at shutdown (open it in Chrome DevTools or speedscope). Node 20 refuses --cpu-prof in NODE_OPTIONS, so agents started
// by other tools (the lab) cannot be profiled otherwise. Guarantees: a failure to profile is
// logged and never stops the agent. Does nothing when the variable is unset.
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

export interface CpuProfile {
  /** Stops the profiler and writes the profile; resolves to its path. */
  stop(): Promise<string>;
}

export async function startCpuProfile(name: string, dir = process.env.SMARTNAT_CPU_PROFILE_DIR, onWritten?: (path: string) => void): Promise<CpuProfile | undefined> {
  if (dir === undefined || dir === '') return undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.start');
  let n = 0;
  const write = async (): Promise<string> => {
    const { profile } = await session.post('Profiler.stop');
    const path = join(dir, `agent-${name}-${process.pid}-${++n}.cpuprofile`);
    await writeFile(path, JSON.stringify(profile));
    return path;
  };
  const dump = (): void => {
    void write()
      .then(async (path) => {
        onWritten?.(path);
        await session.post('Profiler.start');
      })
      .catch(() => undefined);
  };
  process.on('SIGUSR2', dump);
  return {
    stop: async () => {
      process.off('SIGUSR2', dump);
      const path = await write();
      session.disconnect();
      return path;
    },
  };
}
