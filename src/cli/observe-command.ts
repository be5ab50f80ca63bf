// `ferry observe [--namespace X] [--follow] [--json] [--all]`: a live flow view of the local cluster built
// from the ztunnels' access logs (one line per connection, the destination's view by default).
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import { clusterLayout } from '../local-cluster/layout.ts';
import { type FlowFilter, flowFromLogLine, formatFlow, matchesFilter } from './observe/flow.ts';

const HELP = `usage: ferry observe [--cluster name] [--namespace ns] [--follow] [--json] [--all] [--stdin]

  --namespace ns  only flows from or to this namespace
  --follow        keep printing new flows (Ctrl-C to stop)
  --json          one JSON object per flow
  --all           also the source side (outbound) of each connection
  --stdin         read access-log lines from standard input instead of the local cluster's files, e.g. on a
                  Kubernetes cluster: kubectl logs -n ferry-system -l app.kubernetes.io/component=ztunnel \\
                    --max-log-requests 100 -f | ferry observe --stdin
`;

const POLL_MS = 200;

/** Reads whole lines appended to a file since `offset`; returns them and the new offset. */
async function readNewLines(path: string, offset: number): Promise<{ lines: string[]; offset: number }> {
  const size = (await stat(path)).size;
  if (size <= offset) return { lines: [], offset: size < offset ? 0 : offset };
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    await fh.read(buf, 0, buf.length, offset);
    const text = buf.toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) return { lines: [], offset };
    return { lines: text.slice(0, end).split('\n'), offset: offset + Buffer.byteLength(text.slice(0, end + 1)) };
  } finally {
    await fh.close();
  }
}

export async function run(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      cluster: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      follow: { type: 'boolean', short: 'f' },
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      stdin: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const filter: FlowFilter = {
    ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
    destinationOnly: values.all !== true,
  };
  const print = (line: string): void => {
    const flow = flowFromLogLine(line);
    if (flow === null || !matchesFilter(flow, filter)) return;
    process.stdout.write(`${values.json === true ? JSON.stringify(flow) : formatFlow(flow)}\n`);
  };
  if (values.stdin === true) {
    // Until stdin ends (kubectl logs -f: until Ctrl-C); lines that are not access-log lines are skipped.
    for await (const line of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY }))
      print(line);
    return 0;
  }
  const env = clusterCliEnv();
  const layout = clusterLayout(values.cluster ?? env.defaultCluster, { stateRoot: env.stateRoot, cgroup2Root: '/' });
  const offsets = new Map<string, number>();
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  do {
    let files: string[];
    try {
      files = (await readdir(layout.logDir)).filter((f) => f.startsWith('ztunnel') && f.endsWith('.log'));
    } catch {
      process.stderr.write(`ferry observe: no logs at ${layout.logDir} (is the cluster up? see ferry up)\n`);
      return 1;
    }
    for (const file of files.sort()) {
      const path = join(layout.logDir, file);
      const { lines, offset } = await readNewLines(path, offsets.get(path) ?? 0);
      offsets.set(path, offset);
      for (const l of lines) print(l);
    }
    if (values.follow !== true) break;
    await sleep(POLL_MS, undefined, { signal: stop.signal }).catch(() => {});
  } while (!stop.signal.aborted);
  return 0;
}
