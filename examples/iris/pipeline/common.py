"""Shared pieces of the iris pipeline: file locations, the CSV schema and
the train/test split. Every step imports this module so that they agree on
column names and on which rows are held out for evaluation.

Inside a Cairn task container:
  /inputs/<name>   each declared input, read-only  (override: CAIRN_INPUTS)
  /outputs         where declared outputs go       (CAIRN_OUTPUTS, set by the worker)
  /pipeline        this folder, read-only          (CAIRN_PIPELINE_DIR, optional)
"""

import csv
import os
import sys
import tempfile

# Columns of raw.csv, in order. The four measurements are in centimetres.
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABEL = "species"
DATE = "ds"
COLUMNS = FEATURES + [LABEL, DATE]
CLASSES = ["setosa", "versicolor", "virginica"]

# Hold-out split shared by train (fits on the rest) and evaluate (scores on it).
TEST_SIZE = 0.3
SPLIT_SEED = 7


def inputs_dir():
    return os.environ.get("CAIRN_INPUTS", "/inputs")


def outputs_dir():
    return os.environ.get("CAIRN_OUTPUTS", "/outputs")


def input_path(name):
    """Path of the declared input `name` (inputs: {name: task/file})."""
    return os.path.join(inputs_dir(), name)


def output_path(filename):
    return os.path.join(outputs_dir(), filename)


def require_input(name):
    path = input_path(name)
    if not os.path.exists(path):
        die(f"input '{name}' not found at {path} "
            f"(declare it under inputs: in the DAG, or set CAIRN_INPUTS)")
    return path


def write_output(filename, data):
    """Write bytes or text to /outputs/<filename> atomically: a task killed
    half-way (timeout, cancel) never leaves a truncated file behind."""
    outdir = outputs_dir()
    os.makedirs(outdir, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(dir=outdir, prefix=f".{filename}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(outdir, filename))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return os.path.join(outdir, filename)


def die(msg, code=1):
    prog = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    print(f"{prog}: error: {msg}", file=sys.stderr)
    sys.exit(code)


def parse_bool(text):
    """'true'/'false' as rendered from a boolean param, and the usual spellings."""
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r} (use true or false)")


def load_dataset(path):
    """Read a raw.csv that validate has accepted: returns (X, y) with X a
    float array of the FEATURES columns and y a list of species names."""
    import numpy as np

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            die(f"{path}: missing column(s) {', '.join(missing)}")
        X, y = [], []
        for line, row in enumerate(reader, start=2):
            try:
                X.append([float(row[c]) for c in FEATURES])
            except (TypeError, ValueError):
                die(f"{path} line {line}: bad measurement in {row!r} (did validate run?)")
            y.append(row[LABEL])
    return np.array(X, dtype=float), y


def describe(model):
    """'RandomForestClassifier', or 'StandardScaler + LogisticRegression' for a pipeline."""
    if hasattr(model, "steps"):
        return " + ".join(type(step).__name__ for _, step in model.steps)
    return type(model).__name__


def split(X, y):
    """The fixed, stratified hold-out split: (X_train, X_test, y_train, y_test)."""
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
