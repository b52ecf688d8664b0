"""evaluate: score /inputs/model (model.pkl from train) on the held-out rows
of /inputs/raw and write /outputs/metrics.json, a flat JSON object of numbers:

  {"accuracy": 0.9556, "f1": 0.9554, "n_test": 45}

accuracy is the share of correct predictions, f1 the macro-averaged F1
score over the three classes, n_test the number of held-out rows. The DAG
declares these keys, and deploy's `when:` reads evaluate.metrics.accuracy.
"""

import json
import os
import pickle
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.environ.get("CAIRN_PIPELINE_DIR") or os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main():
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    with open(common.require_input("model"), "rb") as f:
        model = pickle.load(f)
    X, y = common.load_dataset(common.require_input("raw"))
    _, X_test, _, y_test = common.split(X, y)
    pred = model.predict(X_test)

    metrics = {
        "accuracy": round(float(accuracy_score(y_test, pred)), 4),
        "f1": round(float(f1_score(y_test, pred, average="macro")), 4),
        "n_test": len(y_test),
    }
    common.write_output("metrics.json", json.dumps(metrics) + "\n")

    print(f"evaluate: {common.describe(model)} on {len(y_test)} held-out rows: "
          f"accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['f1']:.4f}")
    cm = confusion_matrix(y_test, pred, labels=common.CLASSES)
    width = max(len(c) for c in common.CLASSES)
    print("evaluate: confusion matrix (rows: true, columns: predicted)")
    print("  " + " " * width + "".join(f" {c[:10]:>10}" for c in common.CLASSES))
    for c, row in zip(common.CLASSES, cm):
        print(f"  {c:>{width}}" + "".join(f" {n:>10}" for n in row))
    print(f"evaluate: wrote {common.output_path('metrics.json')}: {json.dumps(metrics)}")


if __name__ == "__main__":
    main()
