"""A gs:// workdir end to end against a local GCS emulator: train, interrupt,
resume (bit-identical), evaluate; every file through the same path layer."""
import json

from etils import epath
import jax
import numpy as np
import pytest

from ssljax import saved_runs
from ssljax import train
from tests import helpers

pytest.importorskip("google.cloud.storage")  # the `bucket` fixture: conftest


def test_gs_workdir_train_interrupt_resume_evaluate(data_dir, tmp_path,
                                                    bucket):
  wd = f"{bucket}/run"
  cut = helpers.tiny_config(data_dir, num_steps=4, stop_after_steps=2)
  assert int(train.train_and_evaluate(cut, wd).step) == 2
  cfg = helpers.tiny_config(data_dir, num_steps=4)
  resumed = train.train_and_evaluate(cfg, wd)
  full = train.train_and_evaluate(cfg, str(tmp_path / "local"))
  for a, b in zip(jax.tree.leaves(jax.device_get(full)),
                  jax.tree.leaves(jax.device_get(resumed))):
    np.testing.assert_array_equal(a, b)
  run = epath.Path(wd)
  rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text(
  ).splitlines()]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]
  assert json.loads((run / "config.json").read_text())["method"] == "vicreg"
  assert not (run / "lock.json").exists()
  assert list((run / "tb").iterdir())
  results, path = saved_runs.evaluate(wd, names="knn")
  assert path.startswith("gs://") and 0 <= results[
      "rep/label/true/knn_k20"] <= 1
  assert json.loads(epath.Path(path).read_text())["results"] == results
