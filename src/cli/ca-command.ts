// `ferry ca`: runs the SPIFFE CA as a gRPC IstioCertificateService. The root is generated (and written
// to --root-out, so clients can trust it) or loaded from Istio's cacerts layout (--ca-dir).
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CertificateAuthority } from '../identity/ca.ts';
import { defaultCaAdmissionLimits } from '../identity/ca-admission.ts';
import { allowAll, nodeBoundAuthorizer } from '../identity/ca-authz.ts';
import { startCaServer } from '../identity/ca-server.ts';
import { DrainController } from '../runtime/drain.ts';
import { createLogger } from '../runtime/logger.ts';
import { ConfigError, parseHostPort } from '../runtime/process-config.ts';
import { installSignalHandlers } from '../runtime/signals.ts';

const HELP = `usage: ferry ca [options]

  --listen <host:port>      default 127.0.0.1:15012
  --trust-domain <td>       default cluster.local
  --ca-dir <dir>            Istio plug-in CA layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem);
                            without it a root is generated
  --root-out <file>         write the trust bundle (PEM) here
  --node-token <tok>=<node> accept bearer token <tok> as node <node> (repeatable); without any, every
                            caller may obtain any identity of the trust domain
  --max-signings <n>        requests verified/signed at once (default 2 × cores)
  --max-queued-signings <n> requests waiting for a slot; more are shed with RESOURCE_EXHAUSTED
                            (default 32 × --max-signings)
`;

export async function run(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      listen: { type: 'string', default: '127.0.0.1:15012' },
      'trust-domain': { type: 'string', default: 'cluster.local' },
      'ca-dir': { type: 'string' },
      'root-out': { type: 'string' },
      'node-token': { type: 'string', multiple: true },
      'max-signings': { type: 'string' },
      'max-queued-signings': { type: 'string' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const logger = createLogger({ component: 'ca' });
  const listen = parseHostPort(values.listen, '--listen');
  const trustDomain = values['trust-domain'];
  const ca =
    values['ca-dir'] === undefined
      ? await CertificateAuthority.generate({ trustDomain })
      : await CertificateAuthority.loadPluggedIn(values['ca-dir'], { trustDomain });
  const tokens = new Map<string, string>();
  for (const spec of values['node-token'] ?? []) {
    const i = spec.indexOf('=');
    if (i <= 0) throw new ConfigError(`--node-token: expected <token>=<node>, got ${JSON.stringify(spec)}`);
    tokens.set(spec.slice(0, i), spec.slice(i + 1));
  }
  // Without a pod inventory (the controller supplies one later), a known node may hold any identity.
  const authorizer = tokens.size === 0 ? allowAll() : nodeBoundAuthorizer({ tokens, mayHold: () => true });
  if (values['root-out'] !== undefined) await writeFile(values['root-out'], ca.trustBundlePem().join(''));
  const defaults = defaultCaAdmissionLimits();
  const maxConcurrent = count(values['max-signings'], '--max-signings', defaults.maxConcurrent, 1);
  const maxQueued = count(values['max-queued-signings'], '--max-queued-signings', 32 * maxConcurrent, 0);
  const server = await startCaServer({
    ca,
    authorizer,
    admission: { maxConcurrent, maxQueued },
    host: listen.host,
    port: listen.port,
    ipAddresses: [listen.host],
    log: logger.child({ scope: 'ca' }),
  });
  logger.info({ address: server.address, trustDomain }, 'CA ready');
  const drain = new DrainController();
  using _signals = installSignalHandlers({ drain, drainDeadlineMs: 0, logger });
  await new Promise((resolve) => drain.signal.addEventListener('abort', resolve, { once: true }));
  await server.close();
  logger.info({}, 'CA stopped');
  logger.flush();
  return 0;
}

function count(text: string | undefined, flag: string, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${flag}: expected an integer ≥ ${min}, got ${text}`);
  return n;
}
