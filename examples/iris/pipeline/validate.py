"""validate: check /inputs/raw (raw.csv from ingest) before anything trains
on it, and fail loudly on bad data.

Checks: the header (column names and order), every row's field count, every
measurement is a finite number within a plausible range in cm, every species
is a known class, every row carries the logical date (--date, if given),
all three classes are present with enough rows each, and there are at least
--min-rows rows.

On success it writes /outputs/report.json (row and class counts) and exits 0.
On failure it prints every problem (line and column of raw.csv and why) to
stderr, writes report.json with the list of problems, and exits 1.
"""

import argparse
import csv
import datetime
import json
import math
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.environ.get("CAIRN_PIPELINE_DIR") or os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# Plausible values (cm) for each measurement; Fisher's data spans well inside.
RANGES = {
    "sepal_length": (1.0, 12.0),
    "sepal_width": (0.5, 8.0),
    "petal_length": (0.1, 10.0),
    "petal_width": (0.1, 5.0),
}
MIN_PER_CLASS = 5
SHOW = 25  # problems printed in full; the rest are counted


def main():
    p = argparse.ArgumentParser(description="Validate raw.csv")
    p.add_argument("--date", help="logical date every row must carry (YYYY-MM-DD)")
    p.add_argument("--min-rows", type=int, default=30)
    a = p.parse_args()

    path = common.require_input("raw")
    problems = []
    counts = {c: 0 for c in common.CLASSES}
    nrows = 0

    def problem(line, column, why):
        where = (f"line {line}" if line else "file") + (f", column {column}" if column else "")
        problems.append({"line": line, "column": column, "problem": why,
                         "message": f"{where}: {why}"})

    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            problem(1, None, "the file is empty (no header)")
        elif header != common.COLUMNS:
            missing = [c for c in common.COLUMNS if c not in header]
            extra = [c for c in header if c not in common.COLUMNS]
            why = f"header is {','.join(header)!r}, expected {','.join(common.COLUMNS)!r}"
            if missing:
                why += f"; missing {', '.join(missing)}"
            if extra:
                why += f"; unexpected {', '.join(extra)}"
            problem(1, None, why)
        else:
            for row in reader:
                line = reader.line_num
                nrows += 1
                if len(row) != len(common.COLUMNS):
                    problem(line, None, f"{len(row)} fields, expected {len(common.COLUMNS)}")
                    continue
                rec = dict(zip(common.COLUMNS, row))
                for col in common.FEATURES:
                    text = rec[col]
                    try:
                        v = float(text)
                    except ValueError:
                        problem(line, col, f"{text!r} is not a number")
                        continue
                    if not math.isfinite(v):
                        problem(line, col, f"{text!r} is not a finite number (missing value?)")
                        continue
                    lo, hi = RANGES[col]
                    if not lo <= v <= hi:
                        problem(line, col, f"{v:g} cm is outside the plausible range {lo:g}..{hi:g} cm")
                species = rec[common.LABEL]
                if species in counts:
                    counts[species] += 1
                else:
                    problem(line, common.LABEL,
                            f"unknown class {species!r} (expected one of {', '.join(common.CLASSES)})")
                ds = rec[common.DATE]
                try:
                    datetime.date.fromisoformat(ds)
                except ValueError:
                    problem(line, common.DATE, f"{ds!r} is not a date (YYYY-MM-DD)")
                    continue
                if a.date and ds != a.date:
                    problem(line, common.DATE, f"date {ds} is not the run's logical date {a.date}")

    if header == common.COLUMNS:
        if nrows < a.min_rows:
            problem(None, None, f"only {nrows} rows, at least {a.min_rows} required")
        for c, n in counts.items():
            if n == 0:
                problem(None, common.LABEL, f"class {c!r} is missing: all {len(common.CLASSES)} classes must be present")
            elif n < MIN_PER_CLASS:
                problem(None, common.LABEL, f"class {c!r} has {n} rows, at least {MIN_PER_CLASS} required")

    if problems:
        problems.sort(key=lambda pr: pr["line"] or 0)  # whole-file problems first
        rows = f" ({nrows} rows)" if header == common.COLUMNS else ""
        print(f"validate: FAILED: {len(problems)} problem(s) in raw.csv{rows}:", file=sys.stderr)
        for pr in problems[:SHOW]:
            print(f"  raw.csv {pr['message']}", file=sys.stderr)
        if len(problems) > SHOW:
            print(f"  ... and {len(problems) - SHOW} more", file=sys.stderr)
        print("validate: refusing to pass bad data on to train", file=sys.stderr)

    report = {"ok": not problems, "file": "raw.csv", "rows": nrows, "classes": counts,
              "problems": len(problems), "details": problems[:100]}
    common.write_output("report.json", json.dumps(report, indent=2) + "\n")
    if problems:
        sys.exit(1)

    print(f"validate: ok: {nrows} rows, columns {','.join(common.COLUMNS)}, classes {counts}")


if __name__ == "__main__":
    main()
