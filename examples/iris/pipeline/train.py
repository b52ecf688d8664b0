"""train: fit a classifier on the training part of /inputs/raw and write
/outputs/model.pkl (a pickled scikit-learn estimator; predict() returns
species names).

  --model rf       RandomForestClassifier (100 trees)            [default]
  --model logreg   StandardScaler + LogisticRegression

Seeds are fixed: the same raw.csv and --model give the same model. The rows
held out for evaluate (common.split) are never seen here.
"""

import argparse
import os
import pickle
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.environ.get("CAIRN_PIPELINE_DIR") or os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODEL_SEED = 0
ALIASES = {
    "rf": "rf", "random_forest": "rf", "randomforest": "rf",
    "logreg": "logreg", "lr": "logreg", "logistic_regression": "logreg", "logisticregression": "logreg",
}


def build(kind):
    if kind == "rf":
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier(n_estimators=100, random_state=MODEL_SEED, n_jobs=1)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=MODEL_SEED))


def main():
    p = argparse.ArgumentParser(description="Train the iris classifier")
    p.add_argument("--model", default="rf", help="rf (random forest) or logreg (logistic regression)")
    a = p.parse_args()
    kind = ALIASES.get(a.model.strip().lower())
    if kind is None:
        common.die(f"unknown --model {a.model!r}: use rf or logreg")

    import sklearn

    X, y = common.load_dataset(common.require_input("raw"))
    X_train, _, y_train, _ = common.split(X, y)
    model = build(kind)
    t0 = time.monotonic()
    model.fit(X_train, y_train)
    secs = time.monotonic() - t0
    train_acc = model.score(X_train, y_train)

    path = common.write_output("model.pkl", pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    print(f"train: model {kind} ({common.describe(model)}, scikit-learn {sklearn.__version__})")
    print(f"train: {len(X_train)} training rows of {len(X)} "
          f"(held out {len(X) - len(X_train)}, split seed {common.SPLIT_SEED}), "
          f"features {','.join(common.FEATURES)}")
    print(f"train: fitted in {secs:.2f} s, training accuracy {train_acc:.4f}")
    print(f"train: wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
