"""deploy: publish the trained model, with a record of the run that made it.

The DAG runs this only when evaluate's accuracy reaches params.min_accuracy.
Task containers have a read-only root filesystem, so the copy goes to
/outputs:

  /outputs/model.pkl       the model (byte for byte train's model.pkl)
  /outputs/deployed.json   {run_id, dag, logical_date, model, sha256, bytes,
                            metrics, deployed_at}

Under Cairn the DAG declares `publish: [model.pkl]`: when this task succeeds
the scheduler copies model.pkl from the artifact store to its models folder
(MODELS/iris/deploy/latest/model.pkl, with publish.json beside it), so this
script writes nowhere else.

Run outside Cairn, MODELS_DIR may name a folder to publish to instead: the
same two files go to MODELS_DIR/<run_id>/, and MODELS_DIR/latest is pointed
at that folder. A MODELS_DIR that cannot be written is reported and skipped;
the task still succeeds.
"""

import datetime
import hashlib
import json
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.environ.get("CAIRN_PIPELINE_DIR") or os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def publish(models_dir, run_id, files):
    """Copy files ({name: bytes}) to models_dir/<run_id>/ atomically and point
    models_dir/latest at it. Returns the folder."""
    os.makedirs(models_dir, exist_ok=True)
    name = run_id.replace("/", "_")
    final = os.path.join(models_dir, name)
    tmp = tempfile.mkdtemp(dir=models_dir, prefix=f".{name}.")
    try:
        for fname, data in files.items():
            with open(os.path.join(tmp, fname), "wb") as f:
                f.write(data)
        os.chmod(tmp, 0o755)
        if os.path.isdir(final):  # a retry of the same run: replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link = os.path.join(models_dir, f".latest.{os.getpid()}")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(name, link)
    os.replace(link, os.path.join(models_dir, "latest"))
    return final


def main():
    with open(common.require_input("model"), "rb") as f:
        model = f.read()
    with open(common.require_input("metrics")) as f:
        metrics = json.load(f)

    run_id = os.environ.get("CAIRN_RUN_ID") or \
        "local-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "run_id": run_id,
        "dag": os.environ.get("CAIRN_DAG"),
        "logical_date": os.environ.get("CAIRN_LOGICAL_DATE"),
        "model": "model.pkl",
        "sha256": hashlib.sha256(model).hexdigest(),
        "bytes": len(model),
        "metrics": metrics,
        "deployed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    meta = (json.dumps(record, indent=2) + "\n").encode()

    common.write_output("model.pkl", model)
    common.write_output("deployed.json", meta)
    print(f"deploy: model {record['sha256'][:12]} from run {run_id} "
          f"(accuracy {metrics.get('accuracy')}) -> {common.outputs_dir()}/model.pkl, deployed.json")

    models_dir = os.environ.get("MODELS_DIR")
    if models_dir:
        try:
            where = publish(models_dir, run_id, {"model.pkl": model, "deployed.json": meta})
            print(f"deploy: published to {where} ({models_dir}/latest points there)")
        except OSError as e:
            print(f"deploy: warning: MODELS_DIR={models_dir} cannot be written "
                  f"({e.strerror or e}): the model is in this task's outputs only; bind a "
                  f"writable host folder at {models_dir} to publish it there too", file=sys.stderr)


if __name__ == "__main__":
    main()
