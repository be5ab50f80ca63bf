#!/bin/sh
# Builds the shipped BPF object bpf/redirect.bpf.o from bpf/redirect.bpf.c (`npm run build:bpf`). For
# developers who change the C only: Ferry loads the checked-in object and never runs clang
# (docs/redirect.md, "The shipped object").
# Reproducible: the flags are pinned, and clang runs in this directory on the relative source name with
# -fdebug-compilation-dir=., so no path of the checkout ends up in the debug info. The same clang and
# headers (Debian clang, libbpf-dev, linux-libc-dev) give byte-identical objects, which is how
# test/unit/redirect-bpf/shipped-object.test.ts finds a stale one.
# usage: bpf/build.sh [OUT_DIR]    OUT_DIR defaults to bpf/ (replaces the shipped object)
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="$(cd "${1:-$here}" && pwd)"
cd "$here"
# -mcpu=v1: clang 14's default instruction set, pinned so a newer clang's default cannot change the code
# the verifier sees. Raising it is a datapath change: rebuild, then run the namespaced tests.
flags="-O2 -g -target bpf -mcpu=v1 -std=gnu17 -Wall -Werror -fdebug-compilation-dir=."
for src in *.bpf.c; do
  obj="${src%.c}.o"
  tmp="$out/$obj.$$.tmp"
  # shellcheck disable=SC2086 # $flags is a word list
  if ! clang $flags -I"/usr/include/$(uname -m)-linux-gnu" -c "$src" -o "$tmp"; then
    rm -f "$tmp"
    exit 1
  fi
  mv -f "$tmp" "$out/$obj" # rename: a concurrent reader never sees half an object
done
