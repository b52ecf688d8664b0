"""The three shapes of bench/throughput.sh on a warm Dask LocalCluster.

Usage: /usr/bin/python3 dask_shapes.py WORKERS

WORKERS worker processes of one thread each (2 for 2-way concurrency); every
task runs `true` as a subprocess, as a Cairn or make task does. The cluster
is started once and kept warm. Then it reads shape names (wide, chain, fan),
one a line, from stdin, runs that graph once and prints the seconds from its
first submit to its last result, one line each, until stdin ends. Prints
"ready" once the cluster is up.
"""

import logging
import subprocess
import sys
import time


def true(*_deps):
    """One no-op task: fork/exec `true`, as the other tools do."""
    subprocess.run(["true"], check=True)


def wide(client, tag):
    futs = [client.submit(true, key=f"{tag}-w{i}", pure=False) for i in range(1000)]
    client.gather(futs)


def chain(client, tag):
    f = client.submit(true, key=f"{tag}-c0", pure=False)
    for i in range(1, 200):
        f = client.submit(true, f, key=f"{tag}-c{i}", pure=False)
    f.result()


def fan(client, tag):
    src = client.submit(true, key=f"{tag}-src", pure=False)
    mids = [client.submit(true, src, key=f"{tag}-m{i}", pure=False) for i in range(500)]
    client.submit(true, *mids, key=f"{tag}-sink", pure=False).result()


def main():
    workers = int(sys.argv[1])
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)
    shapes = {"wide": wide, "fan": fan, "chain": chain}
    try:
        print("ready", flush=True)
        for n, line in enumerate(sys.stdin):
            t0 = time.perf_counter()
            shapes[line.strip()](client, f"r{n}")
            print(f"{time.perf_counter() - t0:.6f}", flush=True)
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
