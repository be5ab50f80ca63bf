// The command lines the chart gives `ferry controller`, `ferry ztunnel` and `ferry waypoint`, fed to the real
// CLI: every flag a process does not know yet must be listed as **new** in charts/ferry/README.md ("Process
// flags the chart relies on"), and every flag listed there as existing must be accepted. So the README's
// list cannot drift from the processes in either direction. Parse only: each subcommand's real `run` is
// called with `--help` appended, so a command line that parses prints the help (captured) and returns
// without starting anything.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  fillWaypointTemplate,
  parseWaypointTemplate,
  TEMPLATE_HASH_ANNOTATION,
} from '../../src/controller/waypoint-template.ts';
import { CHART_DIR, container, find, RELEASE, render, waypointObjects } from '../helpers/helm-render.ts';

type Run = (argv: readonly string[]) => Promise<number>;
const COMMANDS: Record<string, () => Promise<{ run: Run }>> = {
  controller: () => import('../../src/cli/controller-command.ts'),
  ztunnel: () => import('../../src/cli/ztunnel-command.ts'),
  waypoint: () => import('../../src/cli/waypoint-command.ts'),
};

/** Runs `ferry <sub> <argv> --help` in this process: null when it parsed, else the refusal's error. */
async function parse(run: Run, argv: readonly string[]): Promise<Error | null> {
  const write = process.stdout.write;
  process.stdout.write = () => true; // the help text
  try {
    assert.equal(await run([...argv, '--help']), 0);
    return null;
  } catch (err) {
    return err as Error;
  } finally {
    process.stdout.write = write;
  }
}

const flagName = (arg: string): string => arg.split('=')[0] as string;

/** Flags in `args` that `ferry <args[0]>` refuses as unknown, found by dropping each refused one in turn. */
async function unknownFlags(args: readonly string[]): Promise<string[]> {
  const [sub, ...rest] = args;
  const load = COMMANDS[sub as string];
  assert.ok(load, `no command module for ${sub}`);
  const { run } = await load();
  const unknown: string[] = [];
  let remaining = [...rest];
  for (let round = 0; round <= rest.length; round++) {
    const err = await parse(run, remaining);
    if (err === null) return unknown.sort();
    const m = /Unknown option '(--[^']+)'/.exec(err.message);
    assert.ok(m, `ferry ${sub} refused its chart arguments for another reason: ${err.message}`);
    const name = m[1] as string;
    unknown.push(name);
    remaining = remaining.filter((a) => flagName(a) !== name);
  }
  assert.fail(`ferry ${sub}: no end to unknown flags`);
}

/** From the README: per process, the flags documented as new and as existing. */
function documentedFlags(): Map<string, { readonly new: Set<string>; readonly existing: Set<string> }> {
  const text = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
  const section = text.slice(text.indexOf('## Process flags the chart relies on'));
  const out = new Map<string, { new: Set<string>; existing: Set<string> }>();
  let current: { new: Set<string>; existing: Set<string> } | null = null;
  for (const line of section.split('\n')) {
    const heading = /^`ferry (\w+)`:$/.exec(line);
    if (heading !== null) {
      current = { new: new Set(), existing: new Set() };
      out.set(heading[1] as string, current);
      continue;
    }
    if (current === null || !line.startsWith('| `--')) continue;
    const [, flagsCell = '', status = ''] = line.split('|');
    const flags = [...flagsCell.matchAll(/`(--[a-z0-9-]+)[^`]*`/g)].map((m) => m[1] as string);
    for (const f of flags) (status.includes('**new**') ? current.new : current.existing).add(f);
  }
  return out;
}

test('every flag the chart passes is either accepted by the process or documented as new', async () => {
  const objects = render();
  const documented = documentedFlags();
  const commands = [
    container(find(objects, 'Deployment', 'ferry-controller'), 'controller').args,
    container(find(objects, 'DaemonSet', 'ferry-ztunnel'), 'ztunnel').args,
    container(find(waypointObjects(objects).filled, 'Deployment', 'waypoint'), 'waypoint').args,
  ];
  for (const args of commands) {
    const sub = args[0] as string;
    const doc = documented.get(sub);
    assert.ok(doc, `the README has no table for ferry ${sub}`);
    const passed = new Set(args.slice(1).map(flagName));
    const unknown = await unknownFlags(args);
    const undocumented = unknown.filter((f) => !doc.new.has(f));
    assert.deepEqual(undocumented, [], `ferry ${sub}: unknown to the process and not listed as new`);
    const claimedButUnknown = unknown.filter((f) => doc.existing.has(f));
    assert.deepEqual(claimedButUnknown, [], `ferry ${sub}: listed as existing but refused`);
    for (const f of passed) {
      assert.ok(doc.new.has(f) || doc.existing.has(f), `ferry ${sub} ${f}: passed by the chart, not in the README`);
    }
  }
});

test('the controller reads the chart’s waypoint template and fills it as the chart documents', () => {
  const objects = render();
  const cm = find(objects, 'ConfigMap', `${RELEASE}-waypoint-template`);
  const template = parseWaypointTemplate(
    (cm.data as Record<string, string>)['waypoint.yaml'] as string,
    'waypoint.yaml',
  );
  const filled = fillWaypointTemplate(template, {
    name: 'waypoint',
    namespace: 'shop',
    uid: '0b3c9d7e-5d0c-4a59-9a8e-2f1c6b7d8e9f',
  }).map((f) => {
    const { [TEMPLATE_HASH_ANNOTATION]: hash, ...annotations } = (f.object.metadata as { annotations: object })
      .annotations as Record<string, string>;
    assert.match(String(hash), /^[0-9a-f]{32}$/);
    const metadata = { ...(f.object.metadata as object), annotations };
    if (Object.keys(annotations).length === 0) delete (metadata as { annotations?: object }).annotations;
    return { ...f.object, metadata };
  });
  assert.deepEqual(filled, waypointObjects(objects).filled);
});
