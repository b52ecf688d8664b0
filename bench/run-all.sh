#!/usr/bin/env bash
# Every benchmark, one after the other. Usage: bench/run-all.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
echo "== DAG parse and validate (10,000 tasks)"; bash "$here/dag_parse.sh" "$build"
echo; echo "== No-op tasks through scheduler and worker"; bash "$here/throughput.sh" "$build"
echo; echo "== Container overhead against bare runc"; RUNS=${RUNS:-30} bash "$here/runc_overhead.sh"
echo; echo "== Artifact store against sha256sum"; bash "$here/artifacts.sh"
echo; echo "== S3 artifact store against curl --aws-sigv4 (s3rver)"; bash "$here/s3.sh"
echo; echo "== Backfill of 1,000 daily runs"; bash "$here/backfill.sh" "$build"
echo; echo "== Step cache: a run of hits against the same run computing"; bash "$here/cache_hit.sh" "$build"
echo; echo "== No-op tasks over TLS against plain TCP"; bash "$here/link_tls.sh" "$build"
echo; echo "== Images: first pull against skopeo+umoci, warm start against bare runc"; bash "$here/images.sh"
echo; echo "== A 200 MB blob through the scheduler against a static file server"; bash "$here/xfer.sh" "$build"
