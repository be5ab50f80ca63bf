// A CA and two ztunnel processes on loopback from a static mesh file, the client side with a SOCKS5 entry:
// the L4 path that the l4 and ztunnel-soak benchmarks drive. Everything started is owned by `stack`.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type FerryProcess, spawnFerry } from '../src/cli/child-process.ts';

export interface ZtunnelPair {
  readonly ca: FerryProcess;
  /** The client-side ztunnel (nodes[0]), with the SOCKS5 entry. */
  readonly a: FerryProcess;
  readonly b: FerryProcess;
  /** `ip:port` of a's SOCKS5 entry. */
  readonly socks5: string;
}

export interface ZtunnelPairOptions {
  readonly dir: string;
  readonly meshYaml: string;
  readonly nodes: readonly [string, string];
  /** NODE_OPTIONS parts for the CA and both ztunnels (empty and undefined ones are skipped). */
  readonly nodeOptions: readonly (string | undefined)[];
  /** The CLI entry of another checkout to run the ztunnels from (default: this tree's). */
  readonly main?: string;
}

export async function startZtunnelPair(stack: AsyncDisposableStack, o: ZtunnelPairOptions): Promise<ZtunnelPair> {
  const configPath = join(o.dir, 'mesh.yaml');
  const rootPath = join(o.dir, 'root-cert.pem');
  await writeFile(configPath, o.meshYaml);
  const nodeOptions = o.nodeOptions.filter((s) => s !== undefined && s !== '');
  const env = { ...process.env, NODE_OPTIONS: nodeOptions.join(' ') };
  const ca = stack.use(spawnFerry('ca', ['ca', '--listen', '127.0.0.1:0', '--root-out', rootPath]));
  const caReady = await ca.waitFor((l) => l.msg === 'CA ready', 'CA ready');
  const ztunnel = (node: string, socks: boolean): FerryProcess =>
    stack.use(
      spawnFerry(
        `ztunnel ${node}`,
        [
          'ztunnel',
          ...['--config', configPath, '--node', node, '--ca-address', String(caReady.address), '--ca-root', rootPath],
          ...['--admin', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--readiness', '127.0.0.1:0'],
          ...(socks ? ['--socks5', '127.0.0.1:0'] : []),
        ],
        env,
        o.main,
      ),
    );
  const a = ztunnel(o.nodes[0], true);
  const b = ztunnel(o.nodes[1], false);
  const readyA = await a.waitFor((l) => l.msg === 'ztunnel ready', 'ztunnel ready');
  await b.waitFor((l) => l.msg === 'ztunnel ready', 'ztunnel ready');
  const socks = readyA.socks5 as { ip: string; port: number };
  return { ca, a, b, socks5: `${socks.ip}:${socks.port}` };
}
