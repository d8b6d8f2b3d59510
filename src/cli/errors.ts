// Errors a subcommand throws to choose its exit code (main.ts maps them).

/** Bad flags or arguments: exit code 2 with the message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
