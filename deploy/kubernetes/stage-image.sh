#!/usr/bin/env bash
# Stage the build context for deploy/kubernetes/Containerfile: BINARY and the libraries it
# links, under CONTEXT/rootfs/ at the paths the dynamic loader will look for them.
# Usage: stage-image.sh BINARY CONTEXT
set -euo pipefail
bin=${1:?usage: stage-image.sh BINARY CONTEXT}
ctx=${2:?usage: stage-image.sh BINARY CONTEXT}
here=$(cd "$(dirname "$0")" && pwd)

[ -x "$bin" ] || { echo "stage-image: $bin is not an executable (cargo build --release -p traffic-counter)" >&2; exit 1; }
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/bin" "$ctx/rootfs/var/lib/traffic-counter"
install -m 0755 "$bin" "$ctx/rootfs/usr/bin/traffic-counter"
cp "$here/Containerfile" "$ctx/Containerfile"

# ldd prints "name => /path (addr)" for libraries and "/path (addr)" for the loader;
# linux-vdso has no file. Copy each file (symlinks resolved) to the path ldd printed.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -n "$libs" ] || { echo "stage-image: ldd listed no libraries for $bin" >&2; exit 1; }
for lib in $libs; do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
echo "staged $bin and $(echo "$libs" | wc -w) libraries in $ctx"
