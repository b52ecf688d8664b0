#!/usr/bin/env bash
# Every benchmark, one after the other. Usage: bench/run-all.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
echo "== DAG parse and validate (10,000 tasks)"; bash "$here/dag_parse.sh" "$build"
echo; echo "== No-op tasks through scheduler and worker"; bash "$here/throughput.sh" "$build"
echo; echo "== The same at 2 slots, against make -j2"; bash "$here/throughput.sh" "$build" 2
echo; echo "== The same graphs on Dask and Snakemake (2-way), against make -j2"
if /usr/bin/python3 -c 'import dask.distributed' 2>/dev/null || /usr/bin/python3 -m snakemake --version >/dev/null 2>&1; then
    bash "$here/peers/peers.sh" 2
else
    echo "skipped: neither Dask nor Snakemake is installed (apt-get install python3-distributed snakemake)"
fi
echo; echo "== Container overhead against bare runc"; RUNS=${RUNS:-30} bash "$here/runc_overhead.sh"
echo; echo "== Artifact store against sha256sum"; bash "$here/artifacts.sh"
echo; echo "== S3 artifact store against curl --aws-sigv4 (s3rver)"; bash "$here/s3.sh"
echo; echo "== Backfill of 1,000 daily runs"; bash "$here/backfill.sh" "$build"
echo; echo "== Step cache: a run of hits against the same run computing"; bash "$here/cache_hit.sh" "$build"
echo; echo "== No-op tasks over TLS against plain TCP"; bash "$here/link_tls.sh" "$build"
echo; echo "== Images: first pull against skopeo+umoci, warm start against bare runc, 60 container tasks at 2 slots against 60 bare runc runs two at a time"; bash "$here/images.sh"
echo; echo "== A 200 MB blob through the scheduler against a static file server"; bash "$here/xfer.sh" "$build"
