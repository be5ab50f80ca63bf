// HAProxy reference sides of the benchmarks (issue 12): the tools installed on demand (Debian packages;
// benchmarks install their own dependencies, the product never needs them), a throw-away CA with a client
// and a server certificate (EC P-256, as Ferry's SVIDs), and HAProxy configurations: an mTLS sidecar pair
// (TCP, one thread each) and an L7 proxy (mode http, one thread) doing a weighted split, plain or with mTLS
// on both legs. TLS 1.3 with AES-128-GCM on every leg, the suite Ferry prefers (docs/performance.md).
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Installs the Debian package of each missing tool (root, as the benches that use it run). */
export function ensureTools(tools: Readonly<Record<string, string>>): void {
  const missing = Object.entries(tools).filter(([bin]) => {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  const pkgs = missing.map(([, pkg]) => pkg);
  process.stdout.write(`installing ${pkgs.join(', ')} (apt-get) for the reference sides\n`);
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function openssl(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, (err, _out, stderr) =>
      err === null ? resolve() : reject(new Error(`openssl ${args[0]}: ${stderr}`)),
    );
  });
}

export interface HaproxyCerts {
  readonly ca: string;
  /** PEM files holding certificate + key, as HAProxy's `crt` wants them. */
  readonly client: string;
  readonly server: string;
}

/** A CA and two leaf certificates (SAN DNS:client, DNS:server) under dir. */
export async function makeCerts(dir: string): Promise<HaproxyCerts> {
  const p = (n: string) => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=bench-ca',
  ]);
  for (const name of ['client', 'server']) {
    await openssl(['req', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${name}`]);
    await writeFile(p(`${name}.ext`), `subjectAltName=DNS:${name}\n`);
    await openssl([
      ...['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial'],
      ...['-out', p(`${name}.crt`), '-days', '2', '-extfile', p(`${name}.ext`)],
    ]);
    await writeFile(p(`${name}.pem`), readFileSync(p(`${name}.crt`), 'utf8') + readFileSync(p(`${name}.key`), 'utf8'));
  }
  return { ca: p('ca.pem'), client: p('client.pem'), server: p('server.pem') };
}

const GLOBAL = `global
  nbthread 1
  maxconn 4096
  ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256
  ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
`;

const defaults = (mode: 'tcp' | 'http') => `defaults
  mode ${mode}
  timeout connect 5s
  timeout client 1h
  timeout server 1h
${mode === 'http' ? '  timeout http-keep-alive 1h\n  option http-keep-alive\n' : ''}`;

export interface Forward {
  readonly listen: string;
  readonly upstream: string;
}

/** Client-side sidecar: plain TCP in, mTLS (client certificate, server verified) out. */
export function clientSidecarConfig(certs: HaproxyCerts, forwards: readonly Forward[]): string {
  return `${GLOBAL}${defaults('tcp')}${forwards
    .map(
      (f, i) => `frontend in${i}
  bind ${f.listen}
  default_backend out${i}
backend out${i}
  server s ${f.upstream} ssl crt ${certs.client} ca-file ${certs.ca} verify required verifyhost server sni str(server)
`,
    )
    .join('')}`;
}

/** Server-side sidecar: mTLS in (client certificate required), plain TCP to the app. */
export function serverSidecarConfig(certs: HaproxyCerts, forwards: readonly Forward[]): string {
  return `${GLOBAL}${defaults('tcp')}${forwards
    .map(
      (f, i) => `frontend in${i}
  bind ${f.listen} ssl crt ${certs.server} ca-file ${certs.ca} verify required
  default_backend app${i}
backend app${i}
  server app ${f.upstream}
`,
    )
    .join('')}`;
}

/**
 * L7 proxy: HTTP/1.1 keep-alive in, each request balanced by weight (HAProxy picks a server per request in
 * HTTP mode). With `certs`, mTLS on both legs: it presents the server certificate to callers (client
 * certificate required) and the client certificate to the servers' sidecars.
 */
export function l7Config(
  listen: string,
  servers: readonly { readonly address: string; readonly weight: number }[],
  certs: HaproxyCerts | null,
): string {
  const bindTls = certs === null ? '' : ` ssl crt ${certs.server} ca-file ${certs.ca} verify required`;
  const srvTls =
    certs === null
      ? ''
      : ` ssl crt ${certs.client} ca-file ${certs.ca} verify required verifyhost server sni str(server)`;
  return `${GLOBAL}${defaults('http')}frontend in
  bind ${listen}${bindTls}
  default_backend split
backend split
  balance random
  http-reuse always
${servers.map((s, i) => `  server s${i} ${s.address} weight ${s.weight}${srvTls}\n`).join('')}`;
}

/** Pids of running haproxy processes whose command line names configPath. */
export function haproxyPids(configPath: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('haproxy') && cmd.includes(configPath)) out.push(Number(entry));
    } catch {}
  }
  return out;
}

/** Checks a configuration with `haproxy -c` so a mistake fails the bench with HAProxy's own message. */
export function checkConfig(configPath: string): void {
  try {
    execFileSync('haproxy', ['-c', '-q', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`haproxy config ${configPath}: ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
  }
}
