// The file side of `ferry migrate` (`-f file|dir`, repeatable): files and directories (non-recursive, *.yaml,
// *.yml, *.json, sorted, as kubectl reads them) → decoded documents with file and line. Multi-document YAML
// and `kind: List` are expanded. Decoding is pure (decodeManifest); only readInputFiles touches the disk.
// Bad YAML is an input problem (file:line), never a crash; unreadable paths are a MigrateError.
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import { MigrateError } from './errors.ts';
import type { InputDocument } from './inventory.ts';
import { type InputProblem, isObj } from './types.ts';

const MAX_FILE_BYTES = 8 * 1024 * 1024; // configuration, not data
const MAX_ALIASES = 100; // YAML anchor expansion guard
const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export interface Decoded {
  readonly documents: readonly InputDocument[];
  readonly problems: readonly InputProblem[];
}

/** One file's text → its documents. Never throws. */
export function decodeManifest(text: string, file: string): Decoded {
  const documents: InputDocument[] = [];
  const problems: InputProblem[] = [];
  const lines = new LineCounter();
  for (const doc of parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })) {
    const line = lines.linePos(doc.contents?.range?.[0] ?? doc.range[0]).line;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        problems.push({
          file,
          line: lines.linePos(e.pos[0]).line,
          object: '',
          message: `YAML syntax error: ${e.message.split('\n')[0]}`,
        });
      }
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (err) {
      problems.push({ file, line, object: '', message: `YAML error: ${(err as Error).message}` });
      continue;
    }
    if (value === null || value === undefined) continue;
    const items = isObj(value) && value.kind === 'List' && Array.isArray(value.items) ? value.items : [value];
    for (const item of items) documents.push({ value: item, origin: { file, line } });
  }
  return { documents, problems };
}

/** Reads every file (directories expanded) and decodes it. */
export async function readInputFiles(paths: readonly string[]): Promise<Decoded> {
  const documents: InputDocument[] = [];
  const problems: InputProblem[] = [];
  for (const file of await expand(paths)) {
    let text: string;
    try {
      const size = (await stat(file)).size;
      if (size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new MigrateError(
        'FERRY_MIGRATE_READ_FAILED',
        `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { cause: err },
      );
    }
    const d = decodeManifest(text, file);
    documents.push(...d.documents);
    problems.push(...d.problems);
  }
  return { documents, problems };
}

async function expand(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let isDir: boolean;
    try {
      isDir = (await stat(path)).isDirectory();
    } catch (err) {
      throw new MigrateError(
        'FERRY_MIGRATE_READ_FAILED',
        `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { cause: err },
      );
    }
    if (!isDir) {
      files.push(path);
      continue;
    }
    const names = (await readdir(path)).filter((n) => EXTENSIONS.has(extname(n))).sort();
    files.push(...names.map((n) => join(path, n)));
  }
  return files;
}
