// docs/errors.md lists every error code the source defines, and nothing else (fastify's errors test idea).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = new URL('../../../', import.meta.url).pathname;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Quoted FERRY_* names, less environment variables (read as `env.NAME`, `process.env.NAME`, `from.NAME`). */
async function codesInSource(): Promise<Set<string>> {
  const codes = new Set<string>();
  const envVars = new Set<string>();
  const files = [...(await sourceFiles(join(ROOT, 'src'))), ...(await sourceFiles(join(ROOT, 'gateway-api')))];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/['"](FERRY_[A-Z0-9_]+)['"]/g)) codes.add(m[1] as string);
    for (const m of text.matchAll(/\b(?:env|from)\??\.(FERRY_[A-Z0-9_]+)/g)) envVars.add(m[1] as string);
  }
  for (const name of envVars) codes.delete(name);
  return codes;
}

async function codesInDoc(): Promise<Set<string>> {
  const text = await readFile(join(ROOT, 'docs/errors.md'), 'utf8');
  return new Set([...text.matchAll(/^\| `(FERRY_[A-Z0-9_]+)` \|/gm)].map((m) => m[1] as string));
}

test('every error code in src/ and gateway-api/ is documented in docs/errors.md', async () => {
  const doc = await codesInDoc();
  const missing = [...(await codesInSource())].filter((c) => !doc.has(c)).sort();
  assert.deepEqual(missing, [], `undocumented codes: ${missing.join(', ')}`);
});

test('docs/errors.md documents no code that src/ no longer has', async () => {
  const src = await codesInSource();
  const stale = [...(await codesInDoc())].filter((c) => !src.has(c)).sort();
  assert.deepEqual(stale, [], `stale codes: ${stale.join(', ')}`);
});
