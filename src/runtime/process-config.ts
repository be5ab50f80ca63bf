// Values every process's configuration shares (ztunnel, waypoint, CA, controller): host:port addresses,
// the admin socket path, where the CA is, and the error an invalid flag or variable fails startup with.
import { FerryError } from '../errors.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * How a process authenticates to the CA: a fixed bearer token (`--ca-token`, the local cluster's node
 * tokens), or a file re-read at every request (`--ca-token-file`: a projected ServiceAccount token, which the
 * kubelet rotates; charts/ferry).
 */
export type CaToken =
  | { readonly kind: 'value'; readonly value: string }
  | { readonly kind: 'file'; readonly path: string };

export type CaConfig =
  | { readonly kind: 'grpc'; readonly address: HostPort; readonly rootCertPath: string; readonly token: CaToken | null }
  /** An in-process CA (tests and single-node use; Istio's FAKE_CA). Its root is written to rootCertOut. */
  | { readonly kind: 'in-process'; readonly caDir: string | null };

export class ConfigError extends FerryError<'FERRY_CONFIG_INVALID'> {
  constructor(message: string) {
    super('FERRY_CONFIG_INVALID', message);
  }
}

export function parseHostPort(text: string, what: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new ConfigError(`${what}: expected host:port, got ${JSON.stringify(text)}`);
  }
  return { host: (m[1] ?? m[2]) as string, port };
}

/** `--ca-token` / `--ca-token-file` (flags win over FERRY_CA_TOKEN / FERRY_CA_TOKEN_FILE); at most one. */
export function parseCaToken(
  flags: { readonly 'ca-token'?: string; readonly 'ca-token-file'?: string },
  env: NodeJS.ProcessEnv,
): CaToken | null {
  const fromFlags = flags['ca-token'] !== undefined || flags['ca-token-file'] !== undefined;
  const value = fromFlags ? flags['ca-token'] : env.FERRY_CA_TOKEN;
  const file = fromFlags ? flags['ca-token-file'] : env.FERRY_CA_TOKEN_FILE;
  if (value !== undefined && value !== '' && file !== undefined && file !== '') {
    throw new ConfigError('--ca-token and --ca-token-file: give one of them, not both');
  }
  if (file !== undefined && file !== '') return { kind: 'file', path: file };
  if (value !== undefined && value !== '') return { kind: 'value', value };
  return null;
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** `--admin-socket`: an absolute path, or empty/absent for none. */
export function parseAdminSocket(text: string | undefined): string | null {
  if (text === undefined || text === '') return null;
  if (!text.startsWith('/')) throw new ConfigError(`--admin-socket: expected an absolute path, got ${text}`);
  return text;
}
