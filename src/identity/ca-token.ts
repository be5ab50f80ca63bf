// The bearer token a CA client presents, from process configuration (src/runtime/process-config.ts): a fixed
// value, or a file read again at every request, so that a projected ServiceAccount token that the kubelet
// rotates (charts/ferry mounts one with the CA's audience) is always presented fresh. The token itself never
// appears in an error or a log line.
import { readFile } from 'node:fs/promises';
import type { CaToken } from '../runtime/process-config.ts';
import { IdentityError } from './errors.ts';

/** What CaClient's `token` option takes. */
export function caTokenProvider(token: CaToken): string | (() => Promise<string>) {
  if (token.kind === 'value') return token.value;
  const { path } = token;
  return async () => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new IdentityError('FERRY_CA_TOKEN_UNREADABLE', `CA token file ${path} cannot be read (${code})`, {
        cause: err,
      });
    }
    const value = text.trim();
    if (value === '') throw new IdentityError('FERRY_CA_TOKEN_UNREADABLE', `CA token file ${path} is empty`);
    return value;
  };
}
