// The CLI's answer to a reader that went away (`ferry status | head -1`, `ferry logs x | head`): a write to
// a pipe whose reader closed fails with EPIPE, which Node emits as an 'error' event on process.stdout and,
// with no listener, crashes with a stack trace. A C program would die of SIGPIPE there; we exit the same
// way, quietly: the reader chose to stop reading, so this is not the command's failure (docs/operations.md).

/** Exit status on a closed stdout/stderr pipe: 0, since `cmd | head` truncating the output is not an error. */
export const BROKEN_PIPE_EXIT_CODE = 0;

/** Makes EPIPE on the given streams end the process quietly; any other stream error is rethrown as before. */
export function exitQuietlyOnBrokenPipe(
  streams: readonly NodeJS.WriteStream[],
  exit: (code: number) => void = process.exit,
): void {
  for (const stream of streams) stream.on('error', (err: Error) => onStreamError(err, exit));
}

function onStreamError(err: Error, exit: (code: number) => void): void {
  if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
    exit(BROKEN_PIPE_EXIT_CODE);
    return;
  }
  // Not ours to swallow: keep Node's behaviour for an unhandled stream error.
  throw err;
}
