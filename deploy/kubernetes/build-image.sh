#!/usr/bin/env bash
# Build the traffic-counter image with buildah, offline: stage the release binary and its
# libraries (stage-image.sh), then build deploy/kubernetes/Containerfile on an empty base.
#
# Usage: deploy/kubernetes/build-image.sh [BINARY] [ARCHIVE]
#   BINARY   default target/release/traffic-counter (cargo build --release -p traffic-counter)
#   ARCHIVE  optional: also write the image as an OCI archive there, for nodes without a
#            registry, e.g. `ctr -n k8s.io images import ARCHIVE` on each node
# Environment: BUILDAH_OPTS, global buildah options (e.g. --root/--runroot/--storage-driver);
#              CONTEXT, the staging directory (default target/image-context).
# Prints the image name (localhost/traffic-counter:VERSION) on its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/traffic-counter}
archive=${2:-}
ctx=${CONTEXT:-target/image-context}
read -r -a opts <<<"${BUILDAH_OPTS:-}"

version=$("$bin" --version | awk '{ print $2 }')
[ -n "$version" ] || { echo "build-image: cannot read the version of $bin" >&2; exit 1; }
image=localhost/traffic-counter:$version

deploy/kubernetes/stage-image.sh "$bin" "$ctx" >&2
buildah "${opts[@]}" bud --quiet --layers=false --timestamp 0 \
  --label org.opencontainers.image.title=traffic-counter \
  --label org.opencontainers.image.version="$version" \
  -f "$ctx/Containerfile" -t "$image" "$ctx" >&2
if [ -n "$archive" ]; then
  rm -f "$archive"
  buildah "${opts[@]}" push --quiet "$image" "oci-archive:$archive:$image" >&2
fi
echo "$image"
