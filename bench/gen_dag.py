#!/usr/bin/python3
"""Write a DAG of N tasks with realistic fields: each task needs up to three
earlier ones, half declare outputs consumed downstream, some use templates
and `when` conditions. Usage: gen_dag.py N > big.yaml"""
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
rng = random.Random(42)
out = sys.stdout
out.write("dag: big\nschedule: \"0 3 * * *\"\ntimezone: Europe/Berlin\n")
out.write("params: {threshold: 0.5, model: rf}\n")
out.write("defaults: {image: host, retries: 2, retry_delay: 30s, timeout: 10m,\n")
out.write("           resources: {cpus: 1, memory: 512Mi}}\ntasks:\n")
for i in range(n):
    out.write(f"  t{i}:\n")
    out.write(f"    command: [python3, /pipeline/step.py, --date, \"{{{{ ds }}}}\", --id, \"{i}\"]\n")
    ups = sorted(set(rng.randrange(0, i) for _ in range(min(i, 3)))) if i else []
    if ups:
        out.write("    needs: [" + ", ".join(f"t{u}" for u in ups) + "]\n")
    if i % 2 == 0:
        out.write("    outputs: [out.csv]\n")
        out.write("    metrics: metrics.json\n")
    ev = [u for u in ups if u % 2 == 0]
    if ev:
        out.write(f"    inputs: {{data: t{ev[0]}/out.csv}}\n")
        out.write(f"    when: \"t{ev[0]}.metrics.score >= params.threshold\"\n")
    out.write("    env: {MODEL: \"{{ params.model }}\", RUN: \"{{ run_id }}\"}\n")
