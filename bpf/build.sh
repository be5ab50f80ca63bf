#!/bin/sh
# Manual build of the BPF objects (the loader builds them on demand via src/redirect-bpf/build.ts).
set -eu
cd "$(dirname "$0")"
mkdir -p build
for src in *.bpf.c; do
  clang -O2 -g -target bpf -Wall -Werror -I"/usr/include/$(uname -m)-linux-gnu" -c "$src" -o "build/${src%.c}.o"
done
