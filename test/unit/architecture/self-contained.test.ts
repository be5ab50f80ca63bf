// The repository stands alone: comments and docs cite docs/ in the repo, never the design notes or research
// files that live outside it (a reader of the repo alone could not follow those).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

const ROOT = new URL('../../../', import.meta.url).pathname;

test('no file cites DESIGN.md or reference/ notes from outside the repository', () => {
  // git grep over tracked files; exit status 1 means no match.
  let hits = '';
  try {
    hits = execFileSync(
      'git',
      ['grep', '-n', '-E', String.raw`DESIGN\.md|reference/[a-z-]+-anchor`, '--', '.', ':!test/unit/architecture/'],
      { cwd: ROOT, encoding: 'utf8' },
    );
  } catch (err) {
    if ((err as { status?: number }).status !== 1) throw err;
  }
  assert.equal(hits, '');
});
