// Child process for the controller-state-store crash test: commits counter = 1, 2, 3, … to the controller
// state file of argv[2] (label override `Namespace/counter`, plus padding so each write takes a while) and
// prints `acked <n>` only after the commit resolved, the way the admin API acknowledges an apply. The test
// kills it with SIGKILL at a random moment and checks that every acknowledged counter survived.
import { ControllerStateStore } from '../../src/local-cluster/controller/state-store.ts';

const stateDir = process.argv[2];
if (stateDir === undefined) throw new Error('usage: state-store-writer.ts <stateDir>');
const padding = 'x'.repeat(256 * 1024);
const store = await ControllerStateStore.open(stateDir);
let n = Number(store.current.labels.get('Namespace/counter')?.n ?? '0');
for (;;) {
  n++;
  await store.update((s) => ({
    ...s,
    labels: new Map(s.labels).set('Namespace/counter', { n: String(n) }).set('Namespace/padding', { p: padding }),
  }));
  process.stdout.write(`acked ${n}\n`);
}
