// Files the local-mode controller shares with `ferry up` and the CLI, all in the cluster's state dir:
// `mesh.json` (written by `up` before anything starts: manifests, controller and ztunnel addresses, one CA
// token per node; 0600 because of the tokens), `vips.json` (Service VIPs, so a restarted controller hands
// out the same ones) and `ca/` (the CA root in Istio's cacerts layout, so a restarted controller keeps one
// root of trust); applied objects and labels live in controller-state.json (state-store.ts; `labels.json`
// is only read once, from a cluster started by an older controller). Parsing is strict: a bad file is an
// error naming it, never a half-read value. Writes are durable: temp file + fsync + rename + fsync of the
// directory (runtime/durable-file.ts), never a torn or lost file.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertificateAuthority } from '../../identity/ca.ts';
import { createSelfSignedRoot, generateP256KeyPair, privateKeyToPem } from '../../identity/x509.ts';
import { syncDirectory, writeFileDurable } from '../../runtime/durable-file.ts';
import { LocalControllerError } from './errors.ts';

export interface LocalNodeConfig {
  /** `node-<n>`. */
  readonly name: string;
  /** ztunnel admin `127.0.0.1:<port>` (enrollment API). */
  readonly admin: string;
  readonly metrics: string;
  readonly readiness: string;
  /** Bearer token this node's ztunnel presents to the CA. Never logged. */
  readonly token: string;
}

export interface LocalMeshConfig {
  readonly cluster: string;
  readonly trustDomain: string;
  /** Absolute manifest paths read at controller start. */
  readonly manifests: readonly string[];
  /** Plaintext xDS, TLS CA, plain-HTTP admin: all on 127.0.0.1 (local mode). */
  readonly controller: { readonly xds: string; readonly ca: string; readonly admin: string };
  readonly nodes: readonly LocalNodeConfig[];
  /**
   * Set for a cluster whose source of truth is its Kubernetes API (`ferry up --api`): the controller runs on
   * that API (`ferry controller --kubeconfig`, xDS over TLS, `controller.xds` names `localhost` so the
   * serving certificate's SAN matches), and the ztunnels' node agents enroll pods from it. `podGateway`:
   * where pods reach the controller (the relay on the pods' gateway address in the bridge netns, and the
   * waypoint template the controller fills), for clusters made since waypoints run as Deployments there.
   */
  readonly api?: { readonly kubeconfig: string; readonly podGateway?: PodGatewayConfig };
}

/** The controller as pods see it: ports on the pods' gateway address inside the bridge netns. */
export interface PodGatewayConfig {
  readonly netnsPath: string;
  readonly address: string;
  readonly xdsPort: number;
  readonly caPort: number;
  /** The waypoint template file (`--waypoint-template`) that `ferry up` wrote. */
  readonly waypointTemplate: string;
}

export const MESH_FILE = 'mesh.json';
export const VIPS_FILE = 'vips.json';
export const LABELS_FILE = 'labels.json';
export const CA_DIR = 'ca';

/**
 * The admin socket of a process of the cluster (`controller`, `ztunnel-node-1`, a waypoint's role): a
 * 0600 Unix socket in the root-only state dir, the only place its admin API accepts changes
 * (src/runtime/admin-socket.ts; docs/operations.md "Admin endpoints").
 */
export function adminSocketPath(stateDir: string, role: string): string {
  const path = join(stateDir, `${role}-admin.sock`);
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES) return path;
  // sun_path holds 107 bytes: a long waypoint role keeps a readable prefix and a hash of the whole.
  const hash = createHash('sha256').update(role).digest('hex').slice(0, 12);
  return join(stateDir, `${role.slice(0, 16)}-${hash}-admin.sock`);
}

const MAX_SOCKET_PATH_BYTES = 107;

/** The CA root (PEM) ztunnels verify the CA server with. */
export function caRootPath(stateDir: string): string {
  return join(stateDir, CA_DIR, 'root-cert.pem');
}

export function newNodeToken(): string {
  return randomBytes(24).toString('base64url');
}

export async function writeJsonAtomic(path: string, value: unknown, mode = 0o600): Promise<void> {
  await writeFileDurable(path, `${JSON.stringify(value, null, 2)}\n`, mode);
}

export async function writeMeshConfig(stateDir: string, config: LocalMeshConfig): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(join(stateDir, MESH_FILE), config);
}

/** Reads mesh.json; FERRY_LOCAL_NOT_FOUND when missing, FERRY_LOCAL_BAD_STATE when malformed. */
export async function readMeshConfig(stateDir: string): Promise<LocalMeshConfig> {
  const path = join(stateDir, MESH_FILE);
  let v: unknown;
  try {
    v = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LocalControllerError(
        'FERRY_LOCAL_NOT_FOUND',
        `no mesh in ${stateDir} (was it started with ferry up -f?)`,
      );
    }
    throw new LocalControllerError('FERRY_LOCAL_BAD_STATE', `${path}: ${readFailure(err)}`);
  }
  const bad = (what: string) => new LocalControllerError('FERRY_LOCAL_BAD_STATE', `${path}: ${what}`);
  if (!isRecord(v)) throw bad('not an object');
  const c = v.controller;
  const str = (x: unknown): x is string => typeof x === 'string' && x !== '';
  if (!str(v.cluster) || !str(v.trustDomain)) throw bad('cluster/trustDomain missing');
  if (!Array.isArray(v.manifests) || !v.manifests.every(str)) throw bad('manifests must be a list of paths');
  if (!isRecord(c) || !str(c.xds) || !str(c.ca) || !str(c.admin)) throw bad('controller addresses missing');
  if (!Array.isArray(v.nodes)) throw bad('nodes must be a list');
  const nodes = v.nodes.map((n: unknown, i: number) => {
    if (!isRecord(n) || ![n.name, n.admin, n.metrics, n.readiness, n.token].every(str)) throw bad(`nodes[${i}]`);
    return {
      name: String(n.name),
      admin: String(n.admin),
      metrics: String(n.metrics),
      readiness: String(n.readiness),
      token: String(n.token),
    };
  });
  const api = v.api;
  if (api !== undefined && (!isRecord(api) || !str(api.kubeconfig))) throw bad('api.kubeconfig missing');
  return {
    cluster: v.cluster,
    trustDomain: v.trustDomain,
    manifests: v.manifests,
    controller: { xds: c.xds, ca: c.ca, admin: c.admin },
    nodes,
    ...(isRecord(api) && str(api.kubeconfig)
      ? { api: { kubeconfig: api.kubeconfig, ...podGatewayOf(api.podGateway, bad) } }
      : {}),
  };
}

function podGatewayOf(v: unknown, bad: (what: string) => Error): { podGateway?: PodGatewayConfig } {
  if (v === undefined) return {};
  const port = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x > 0 && x < 65536;
  const str = (x: unknown): x is string => typeof x === 'string' && x !== '';
  if (
    !isRecord(v) ||
    !str(v.netnsPath) ||
    !str(v.address) ||
    !str(v.waypointTemplate) ||
    !port(v.xdsPort) ||
    !port(v.caPort)
  ) {
    throw bad('api.podGateway: netnsPath, address, xdsPort, caPort, waypointTemplate expected');
  }
  return {
    podGateway: {
      netnsPath: v.netnsPath,
      address: v.address,
      xdsPort: v.xdsPort as number,
      caPort: v.caPort as number,
      waypointTemplate: v.waypointTemplate,
    },
  };
}

/** `ca/` in the state dir: the CA root in Istio's cacerts layout (loadOrCreateCa writes it). */
export function caDirPath(stateDir: string): string {
  return join(stateDir, CA_DIR);
}

/** `node-tokens.json` (0600): {token: node} for the controller on the API (`--node-tokens`). */
export function nodeTokensPath(stateDir: string): string {
  return join(stateDir, 'node-tokens.json');
}

/** A JSON object of string → T from `file`, or an empty map when the file does not exist. */
export async function readJsonMap<T>(file: string, valid: (x: unknown) => x is T): Promise<Map<string, T>> {
  let v: unknown;
  try {
    v = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new LocalControllerError('FERRY_LOCAL_BAD_STATE', `${file}: ${readFailure(err)}`);
  }
  if (!isRecord(v)) throw new LocalControllerError('FERRY_LOCAL_BAD_STATE', `${file}: not an object`);
  const out = new Map<string, T>();
  for (const [k, x] of Object.entries(v)) {
    if (!valid(x)) throw new LocalControllerError('FERRY_LOCAL_BAD_STATE', `${file}: bad entry ${JSON.stringify(k)}`);
    out.set(k, x);
  }
  return out;
}

export async function writeJsonMap<T>(file: string, map: ReadonlyMap<string, T>): Promise<void> {
  await writeJsonAtomic(file, Object.fromEntries(map));
}

/**
 * The cluster's CA: loaded from `<stateDir>/ca` (Istio cacerts layout), or generated there on first start.
 * Reusing it across controller restarts keeps every issued certificate valid.
 */
export async function loadOrCreateCa(stateDir: string, trustDomain: string): Promise<CertificateAuthority> {
  const dir = join(stateDir, CA_DIR);
  if (!existsSync(join(dir, 'ca-key.pem'))) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const keys = await generateP256KeyPair();
    const now = Date.now();
    const root = await createSelfSignedRoot({
      keys,
      commonName: `Ferry local root CA (${trustDomain})`,
      organization: trustDomain,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 365 * 24 * 3600 * 1000),
    });
    const pem = root.toString('pem');
    for (const f of ['ca-cert.pem', 'root-cert.pem', 'cert-chain.pem']) {
      await writeFileDurable(join(dir, f), `${pem}\n`, 0o644);
    }
    // Last: its presence means "complete" (a crash before it makes the next start generate a new root).
    await writeFileDurable(join(dir, 'ca-key.pem'), await privateKeyToPem(keys.privateKey), 0o600);
    await syncDirectory(stateDir);
  }
  return CertificateAuthority.loadPluggedIn(dir, { trustDomain });
}

/**
 * Why a state file could not be read, never with its content: V8's JSON.parse message quotes the text
 * around the error, and mesh.json holds the CA tokens. No `cause` either (it carries the same message).
 */
function readFailure(err: unknown): string {
  if (err instanceof SyntaxError) return 'not valid JSON';
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? `cannot read (${code})` : 'cannot read';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
