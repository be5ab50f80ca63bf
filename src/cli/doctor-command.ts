// `ferry doctor [--json]`: can this machine run Ferry's BPF data plane and the local cluster? One line per
// check (ok, warn or FAIL) with the fix under each one that is not ok, then a one-line verdict; exit 0 when
// nothing failed, 1 otherwise (docs/operations.md, "ferry doctor"). Reads only: it mounts nothing.
import { parseArgs } from 'node:util';
import { doctorVerdict, evaluateHost, formatDoctorText } from '../redirect-bpf/host-checks.ts';
import { gatherHostFacts } from '../redirect-bpf/host-facts.ts';

const HELP = `usage: ferry doctor [--json]

Checks what Ferry needs from this machine: kernel version, BTF, bpffs, cgroup2 (mount and mode),
capabilities (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN), memlock, libbpf, every BPF program type, helper and
map type the redirector uses, a trial load of the shipped BPF object, and the host tools of the local
cluster. Run it as the user that runs Ferry (root: sudo ./bin/ferry doctor). Exit status 0 when no check
failed, 1 otherwise. --json prints {ok, verdict, checks: [{name, status, detail, fix?}]}.
`;

export async function run(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const checks = evaluateHost(gatherHostFacts({ path: process.env.PATH ?? '' }));
  const verdict = doctorVerdict(checks);
  process.stdout.write(
    values.json === true
      ? `${JSON.stringify({ ok: verdict.ok, verdict: verdict.line, checks }, null, 2)}\n`
      : formatDoctorText(checks),
  );
  return verdict.ok ? 0 : 1;
}
