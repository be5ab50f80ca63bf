// Values every process's configuration shares (ztunnel, waypoint, CA, controller): host:port addresses,
// the admin socket path, where the CA is, and the error an invalid flag or variable fails startup with.
import { FerryError } from '../errors.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type CaConfig =
  | { readonly kind: 'grpc'; readonly address: HostPort; readonly rootCertPath: string; readonly token: string | null }
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

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** `--admin-socket`: an absolute path, or empty/absent for none. */
export function parseAdminSocket(text: string | undefined): string | null {
  if (text === undefined || text === '') return null;
  if (!text.startsWith('/')) throw new ConfigError(`--admin-socket: expected an absolute path, got ${text}`);
  return text;
}
