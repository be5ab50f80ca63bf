// The layer order of docs/architecture.md ("Layout"), checked on the source: every relative import in src/ and
// gateway-api/ points to the same folder or a lower layer, sibling processes (ztunnel, waypoint, controller)
// never import each other, and no module imports itself back through a cycle.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const ROOT = resolve(new URL('../../../', import.meta.url).pathname);

/** Bottom to top. Folders of one rank may import each other, except the process folders (rank 4). */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['src/errors.ts', 'src/runtime'],
  ['src/identity'],
  ['src/mesh'],
  ['src/hbone', 'src/xds', 'src/redirect-bpf', 'src/kube', 'gateway-api'],
  ['src/ztunnel', 'src/waypoint', 'src/controller'],
  ['src/local-cluster', 'src/migrate'],
  ['src/cli'],
];
const PROCESS_RANK = 4;

function areaOf(file: string): { area: string; rank: number } {
  for (const [rank, areas] of LAYERS.entries()) {
    for (const area of areas) if (file === area || file.startsWith(`${area}/`)) return { area, rank };
  }
  throw new Error(`${file} is in no layer: add its folder to LAYERS and to docs/architecture.md`);
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'|import\(\s*'(\.{1,2}\/[^']+)'\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(IMPORT)]
    .map((m) => relative(ROOT, resolve(dirname(join(ROOT, file)), (m[1] ?? m[2]) as string)))
    .filter((dep) => dep.endsWith('.ts')); // data (package.json) is not a layer
}

const files = [...sourceFiles('src'), ...sourceFiles('gateway-api')];
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('every import points to the same area or a lower layer; process folders never import each other', () => {
  const violations: string[] = [];
  for (const [file, deps] of graph) {
    const from = areaOf(file);
    for (const dep of deps) {
      const to = areaOf(dep);
      if (to.area === from.area) continue;
      if (to.rank > from.rank) violations.push(`${file} -> ${dep} (up: ${from.area} below ${to.area})`);
      else if (to.rank === from.rank && from.rank === PROCESS_RANK) violations.push(`${file} -> ${dep} (sibling)`);
    }
  }
  assert.deepEqual(violations, []);
});

test('no import cycles', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const dep of graph.get(file) ?? []) {
      if (state.get(dep) === 'open') cycles.push([...stack.slice(stack.indexOf(dep)), dep].join(' -> '));
      else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  assert.deepEqual(cycles, []);
});

test('the checker sees imports (a known edge exists)', () => {
  assert.ok(graph.get('src/ztunnel/outbound.ts')?.some((d) => d.startsWith('src/hbone/')));
});
