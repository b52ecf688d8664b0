"""ingest: write the iris data set as /outputs/raw.csv.

The data is scikit-learn's bundled copy of Fisher's iris data (no download).
Every row carries the run's logical date in the `ds` column.

  --date YYYY-MM-DD   logical date of the run ({{ ds }})
  --rows N            number of rows (default 150: the whole data set once;
                      fewer: a random subset; more: rows drawn again)
  --noise SIGMA       add gaussian noise (cm) to every measurement; measurements
                      are kept at 0.1 cm or more
  --corrupt[=BOOL]    deliberately write a few bad rows, to try the failure path
  --seed N            seed for --rows/--noise sampling (default 0)
"""

import argparse
import csv
import datetime
import io
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.environ.get("CAIRN_PIPELINE_DIR") or os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def date_arg(text):
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}")


def bool_arg(text):
    try:
        return common.parse_bool(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def main():
    p = argparse.ArgumentParser(description="Write the iris data set as raw.csv")
    p.add_argument("--date", type=date_arg,
                   default=(os.environ.get("CAIRN_LOGICAL_DATE", "")[:10] or datetime.date.today().isoformat()))
    p.add_argument("--rows", type=int, default=150)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--corrupt", type=bool_arg, nargs="?", const=True, default=False)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.rows < 1:
        p.error("--rows must be at least 1")
    if a.noise < 0:
        p.error("--noise must not be negative")

    import numpy as np
    from sklearn.datasets import load_iris

    iris = load_iris()
    X, target = iris.data, iris.target
    names = [str(n) for n in iris.target_names]
    assert names == common.CLASSES, names
    n = len(X)
    rng = np.random.default_rng(a.seed)

    if a.rows == n:
        idx = np.arange(n)
    elif a.rows < n:
        idx = np.sort(rng.permutation(n)[: a.rows])
    else:
        idx = np.concatenate([np.arange(n), rng.choice(n, a.rows - n, replace=True)])
    X = X[idx].copy()
    y = [names[t] for t in target[idx]]

    if a.noise > 0:
        X = np.maximum(X + rng.normal(0.0, a.noise, X.shape), 0.1)
        X = np.round(X, 3)

    rows = [[repr(round(float(v), 3)) for v in x] + [label, a.date] for x, label in zip(X, y)]

    if a.corrupt:
        # One of each kind of problem validate looks for; lines are CSV lines
        # (line 1 is the header).
        bad = {
            5: (common.FEATURES.index("sepal_width"), "nan"),        # missing value
            42: (common.FEATURES.index("petal_length"), "-3.2"),     # impossible length
            77: (common.FEATURES.index("sepal_length"), "5,1cm"),    # not a number
            120: (len(common.FEATURES), "virginca"),                 # unknown class
        }
        for line, (col, value) in bad.items():
            if line - 2 < len(rows):
                rows[line - 2][col] = value
        print(f"ingest: --corrupt: wrote bad values on CSV lines {sorted(k for k in bad if k - 2 < len(rows))}")

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(common.COLUMNS)
    w.writerows(rows)
    path = common.write_output("raw.csv", buf.getvalue())

    counts = {c: y.count(c) for c in common.CLASSES}
    print(f"ingest: wrote {len(rows)} rows for {a.date} to {path}"
          f" (noise {a.noise:g} cm, classes {counts})")


if __name__ == "__main__":
    main()
