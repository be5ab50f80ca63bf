// Container images → what runs in the pod. Pods share the host's filesystem, so there are no images: common
// ones map to Ferry's built-in test apps (`ferry testapp …`) so that examples read like real Kubernetes YAML.
//
//   ferry/echo, hashicorp/http-echo, ealen/echo-server,       → ferry testapp http-echo --port <first
//   kennethreitz/httpbin, mccutchen/go-httpbin,                  containerPort, else the image's usual port>
//   mendhak/http-https-echo
//   ferry/tcp-echo, istio/tcp-echo-server                      → ferry testapp tcp-echo --port <…>
//   ferry/grpc-echo                                            → ferry testapp grpc-echo --port <…, 50051>
//   curlimages/curl, nicolaka/netshoot, busybox, alpine,       → the container's command if it has one
//   ubuntu, debian, ferry/client, ferry/sleep                    (`sleep …` runs the host's sleep), else
//                                                                `sleep infinity`; use `ferry exec` to run
//                                                                the built-in curl in it
//   ferry/ferry (the chart's image; its entrypoint is `ferry`)  → this Ferry with the container's args
//   anything else with a command                               → that command, run from the host's PATH
//   anything else without a command                            → FERRY_CLUSTER_UNSUPPORTED_IMAGE
//
// In a command, `ferry` means this Ferry and `curl` means `ferry testapp curl` (the host curl is /usr/bin/curl).
// Pure: no I/O; the caller supplies how to run Ferry itself.
import { ClusterError } from './errors.ts';
import type { ContainerSpec } from './layout.ts';

export interface ResolvedCommand {
  readonly argv: readonly [string, ...string[]];
  /** Which mapping applied, for `ferry up` progress and status output. */
  readonly app: 'http-echo' | 'tcp-echo' | 'grpc-echo' | 'sleeper' | 'ferry' | 'command';
}

const HTTP_ECHO_IMAGES: Readonly<Record<string, number>> = {
  'ferry/echo': 8080,
  'hashicorp/http-echo': 5678,
  'ealen/echo-server': 80,
  'kennethreitz/httpbin': 80,
  'mccutchen/go-httpbin': 8080,
  'mendhak/http-https-echo': 8080,
};
const TCP_ECHO_IMAGES: Readonly<Record<string, number>> = { 'ferry/tcp-echo': 9000, 'istio/tcp-echo-server': 9000 };
const GRPC_ECHO_IMAGES: Readonly<Record<string, number>> = { 'ferry/grpc-echo': 50051 };
/** Ferry's own image (Containerfile, charts/ferry values `image.repository`): entrypoint `ferry`. */
const FERRY_IMAGES: ReadonlySet<string> = new Set(['ferry/ferry']);
const CLIENT_IMAGES: ReadonlySet<string> = new Set([
  'curlimages/curl',
  'nicolaka/netshoot',
  'busybox',
  'alpine',
  'ubuntu',
  'debian',
  'ferry/client',
  'ferry/sleep',
]);

/** `docker.io/library/busybox:1.36@sha256:…` → `busybox`; `ghcr.io/x/y:tag` → `x/y`. */
export function imageName(image: string): string {
  let ref = image.split('@')[0] ?? '';
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) ref = ref.slice(0, colon);
  const parts = ref.split('/');
  if (parts.length > 1 && /[.:]|^localhost$/.test(parts[0] ?? '')) parts.shift(); // registry host
  if (parts[0] === 'library') parts.shift();
  return parts.join('/');
}

/** What to run for a container. `ferryArgv` runs this Ferry (e.g. [node, main.ts]). */
export function resolveContainerCommand(c: ContainerSpec, ferryArgv: readonly [string, ...string[]]): ResolvedCommand {
  const name = c.image === undefined ? undefined : imageName(c.image);
  const given = [...(c.command ?? []), ...(c.args ?? [])];
  const port = c.ports?.[0];
  if (name !== undefined && name in HTTP_ECHO_IMAGES && c.command === undefined) {
    const p = port ?? listenFlagPort(c.args ?? []) ?? HTTP_ECHO_IMAGES[name];
    return { app: 'http-echo', argv: [...ferryArgv, 'testapp', 'http-echo', '--port', String(p)] };
  }
  if (name !== undefined && name in TCP_ECHO_IMAGES && c.command === undefined) {
    const p = port ?? TCP_ECHO_IMAGES[name];
    return { app: 'tcp-echo', argv: [...ferryArgv, 'testapp', 'tcp-echo', '--port', String(p)] };
  }
  if (name !== undefined && name in GRPC_ECHO_IMAGES && c.command === undefined) {
    const p = port ?? GRPC_ECHO_IMAGES[name];
    return { app: 'grpc-echo', argv: [...ferryArgv, 'testapp', 'grpc-echo', '--port', String(p)] };
  }
  if (name !== undefined && FERRY_IMAGES.has(name) && c.command === undefined) {
    return { app: 'ferry', argv: [...ferryArgv, ...(c.args ?? [])] };
  }
  const [first, ...rest] = given;
  if (first === undefined) {
    if (name !== undefined && CLIENT_IMAGES.has(name)) return { app: 'sleeper', argv: ['sleep', 'infinity'] };
    throw new ClusterError(
      'FERRY_CLUSTER_UNSUPPORTED_IMAGE',
      `container ${c.name}: image ${JSON.stringify(c.image ?? '')} has no built-in stand-in and no command; ` +
        `use one of ${[...Object.keys(HTTP_ECHO_IMAGES), ...Object.keys(TCP_ECHO_IMAGES), ...Object.keys(GRPC_ECHO_IMAGES), ...CLIENT_IMAGES].join(', ')} or set command`,
    );
  }
  const argv = mapCommand(first, rest, ferryArgv);
  return { app: argv[0] === 'sleep' ? 'sleeper' : 'command', argv };
}

/** `ferry …` → this Ferry; `curl …` → the built-in client; anything else unchanged. */
export function mapCommand(
  cmd: string,
  args: readonly string[],
  ferryArgv: readonly [string, ...string[]],
): readonly [string, ...string[]] {
  if (cmd === 'ferry') return [...ferryArgv, ...args];
  if (cmd === 'curl') return [...ferryArgv, 'testapp', 'curl', ...args];
  return [cmd, ...args];
}

/** hashicorp/http-echo's `-listen=:5678` / `-listen :5678`. */
function listenFlagPort(args: readonly string[]): number | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const value = a.startsWith('-listen=') ? a.slice(8) : a === '-listen' ? args[i + 1] : undefined;
    const m = value === undefined ? null : /:(\d{1,5})$/.exec(value);
    if (m !== null) return Number(m[1]);
  }
  return undefined;
}
