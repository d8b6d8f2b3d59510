// Logger factory: pino JSON logs with one `component` per module. Nothing is built at import;
// main.ts creates the root logger and passes children down.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const opts: LoggerOptions = { level: options.level ?? 'info', base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  return options.destination ? pino(opts, options.destination as pino.DestinationStream) : pino(opts);
}

/** A logger that writes nothing, for tests and pure callers that require one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
