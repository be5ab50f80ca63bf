// The checked-in bpf/redirect.bpf.o is what bpf/build.sh makes of bpf/redirect.bpf.c today (docs/redirect.md,
// "The shipped object"): Ferry loads it and never runs clang, so a C change without a rebuild would silently
// run the old datapath. The rebuild needs clang (developers, CI); without it, or with another clang version
// than the one that built the shipped object (bytes differ across versions), that test skips, and fails
// under FERRY_REQUIRE_PRIVILEGED=1 (.ci/run installs the reference toolchain).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { promisify } from 'node:util';
import {
  BPF_SOURCE_DIR,
  buildBpfObject,
  compilerOfObject,
  SHIPPED_BPF_OBJECT,
} from '../../../src/redirect-bpf/build.ts';

const run = promisify(execFile);
const EM_BPF = 247;
const PROGRAM_SECTIONS = ['cgroup/connect4', 'cgroup/connect6', 'sockops', 'sk_lookup'];

function skipOrFail(t: TestContext, reason: string): void {
  if (process.env.FERRY_REQUIRE_PRIVILEGED === '1') {
    assert.fail(`required under FERRY_REQUIRE_PRIVILEGED=1 but cannot run: ${reason}`);
  }
  t.skip(reason);
}

/** Section names of a little-endian ELF64 object, from its section header table. */
function sectionNames(elf: Buffer): string[] {
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const header = (i: number) => shoff + i * shentsize;
  const strtab = Number(elf.readBigUInt64LE(header(elf.readUInt16LE(0x3e)) + 0x18));
  const names: string[] = [];
  for (let i = 1; i < shnum; i++) {
    const start = strtab + elf.readUInt32LE(header(i));
    names.push(elf.toString('latin1', start, elf.indexOf(0, start)));
  }
  return names;
}

async function localClang(): Promise<string | null> {
  try {
    const { stdout } = await run('clang', ['--version']);
    return compilerOfObject(Buffer.from(stdout, 'latin1'));
  } catch {
    return null;
  }
}

test('the shipped object is a BPF ELF with BTF, the four program sections and its compiler named', () => {
  const obj = readFileSync(SHIPPED_BPF_OBJECT);
  assert.equal(obj.subarray(0, 4).toString('latin1'), '\x7fELF');
  assert.equal(obj.readUInt16LE(18), EM_BPF, 'e_machine');
  const sections = sectionNames(obj);
  for (const section of [...PROGRAM_SECTIONS, '.maps', '.BTF', '.BTF.ext', 'license']) {
    assert.ok(sections.includes(section), `section ${section} in ${sections.join(' ')}`);
  }
  assert.match(compilerOfObject(obj) ?? '', /clang version \d+\./);
});

test('the shipped object is tracked by git, so a clean clone has it', async (t) => {
  if (!existsSync(join(BPF_SOURCE_DIR, '..', '.git'))) {
    t.skip('not a git checkout');
    return;
  }
  const { stdout } = await run('git', ['ls-files', '--error-unmatch', 'bpf/redirect.bpf.o'], {
    cwd: join(BPF_SOURCE_DIR, '..'),
  });
  assert.equal(stdout.trim(), 'bpf/redirect.bpf.o');
});

test('bpf/build.sh is reproducible and the shipped object is what it builds from the source', async (t) => {
  const shipped = readFileSync(SHIPPED_BPF_OBJECT);
  const clang = await localClang();
  if (clang === null) {
    skipOrFail(t, 'clang not installed (Debian clang, libbpf-dev)');
    return;
  }
  const shippedBy = compilerOfObject(shipped);
  if (clang !== shippedBy) {
    skipOrFail(t, `the shipped object was built by ${shippedBy}, this machine has ${clang}: bytes would differ`);
    return;
  }
  const dir = mkdtempSync('/tmp/ferrytest-bpf-build-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const first = readFileSync(await buildBpfObject({ outDir: join(dir, 'a') }));
  const second = readFileSync(await buildBpfObject({ outDir: join(dir, 'b') }));
  assert.ok(first.equals(second), 'two builds of the same source differ: the build is not deterministic');
  assert.ok(
    first.equals(shipped),
    'bpf/redirect.bpf.o is stale: it differs from a fresh build of bpf/redirect.bpf.c; run `npm run build:bpf` and commit the object',
  );
});
