"""Preemption, damaged checkpoints, workdir locks, config validation, errors."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest

from ssljax import checkpoint
from ssljax import preemption
from ssljax import train
from ssljax import validate
from ssljax import workdir
import ssljax.data
from tests import helpers

_FLAGS = ["--config.checkpoint.every=1000"]  # only the signal checkpoints


def _env():
  env = dict(os.environ)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = helpers.ROOT + os.pathsep + env.get("PYTHONPATH", "")
  env["JAX_COMPILATION_CACHE_DIR"] = os.path.join(
      tempfile.gettempdir(), "ssljax_test_jax_cache")
  return env


def _rows(wd):
  path = os.path.join(wd, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  return [json.loads(l) for l in open(path) if l.strip()]


def _start(data_dir, wd, num_steps):
  cmd = ([sys.executable, "-m", "ssljax.cli.train"]
         + helpers.tiny_flags(data_dir, num_steps=num_steps) + _FLAGS
         + [f"--workdir={wd}"])
  return subprocess.Popen(cmd, env=_env(), stderr=subprocess.PIPE, text=True)


def _wait_for_rows(proc, wd, n, timeout=300):
  t = time.time()
  while len(_rows(wd)) < n:
    assert proc.poll() is None, proc.stderr.read()
    assert time.time() - t < timeout
    time.sleep(0.05)


def test_sigterm_checkpoints_then_resume_is_bit_identical(data_dir, tmp_path):
  steps = 60
  cut = str(tmp_path / "cut")
  proc = _start(data_dir, cut, steps)
  _wait_for_rows(proc, cut, 3)
  proc.send_signal(signal.SIGTERM)
  t = time.time()
  rc = proc.wait(timeout=120)
  err = proc.stderr.read()
  assert rc == preemption.EXIT_CODE, err
  assert time.time() - t < 30
  assert "Stopped by SIGTERM after checkpointing step" in err
  mngr = checkpoint.manager(cut, helpers.tiny_config(data_dir).checkpoint)
  (reached,) = mngr.all_steps()
  assert 3 <= reached < steps and _rows(cut)[-1]["step"] == reached
  assert not os.path.exists(os.path.join(cut, "lock.json"))

  # A second signal aborts at once (no checkpoint, killed by the signal).
  proc = _start(data_dir, cut, steps)
  _wait_for_rows(proc, cut, reached + 2)
  proc.send_signal(signal.SIGTERM)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=60) in (-signal.SIGTERM, preemption.EXIT_CODE)

  cfg = helpers.tiny_config(data_dir, num_steps=steps,
                            **{"checkpoint.every": 1000})
  resumed = train.train_and_evaluate(cfg, cut, force_lock=True)
  full = train.train_and_evaluate(cfg, str(tmp_path / "full"))
  for a, b in zip(jax.tree.leaves(jax.device_get(full)),
                  jax.tree.leaves(jax.device_get(resumed))):
    np.testing.assert_array_equal(a, b)
  # every step once in metrics.jsonl, however often the run was cut
  assert [r["step"] for r in _rows(cut)] == list(range(1, steps + 1))


def _damage_truncate(step_dir):
  # Every array data file cut to half: which file holds which array (and
  # which bytes a restore reads) varies from run to run.
  for r, _, fs in os.walk(os.path.join(step_dir, "state")):
    for name in fs:
      path = os.path.join(r, name)
      if "ocdbt.process" in r and os.path.basename(r) == "d":
        with open(path, "r+b") as f:
          f.truncate(os.path.getsize(path) // 2)


def _damage_metadata(step_dir):
  os.remove(os.path.join(step_dir, "data", "metadata"))


def test_damaged_newest_checkpoint_falls_back_to_an_older_one(data_dir,
                                                              tmp_path):
  cfg = helpers.tiny_config(data_dir, num_steps=4)
  longer = helpers.tiny_config(data_dir, num_steps=6)
  four = str(tmp_path / "four")
  train.train_and_evaluate(cfg, four)
  full = jax.device_get(train.train_and_evaluate(longer,
                                                 str(tmp_path / "full")))
  for damage in (_damage_truncate, _damage_metadata):
    wd = str(tmp_path / damage.__name__)
    shutil.copytree(four, wd)  # the same finished 4-step run, damaged
    damage(os.path.join(wd, "checkpoints", "4"))
    resumed = train.train_and_evaluate(longer, wd, override_config=True)
    moved = os.listdir(os.path.join(wd, "checkpoints_damaged"))
    assert any(m.startswith("4-") and not m.endswith(".txt") for m in moved)
    for a, b in zip(jax.tree.leaves(full),
                    jax.tree.leaves(jax.device_get(resumed))):
      np.testing.assert_array_equal(a, b, err_msg=damage.__name__)
  # only damaged checkpoints left: refused, nothing moved
  for step in checkpoint.manager(wd, cfg.checkpoint).all_steps():
    _damage_metadata(os.path.join(wd, "checkpoints", str(step)))
  with pytest.raises(checkpoint.DamagedCheckpoints, match="Nothing was moved"):
    train.train_and_evaluate(longer, wd)


def test_second_run_in_a_workdir_is_refused_and_stale_locks_are_taken(
    tmp_path):
  with workdir.Lock(tmp_path, heartbeat_every=0.05, settle=0):
    with pytest.raises(workdir.WorkdirLocked, match=f"pid {os.getpid()}"):
      workdir.Lock(tmp_path, settle=0).acquire()
    time.sleep(0.2)  # the heartbeat keeps it fresh
    with pytest.raises(workdir.WorkdirLocked):
      workdir.Lock(tmp_path, stale_after=0.15, settle=0).acquire()
  assert not (tmp_path / "lock.json").exists()
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  owner = {"host": os.uname().nodename, "pid": int(dead.stdout), "token": "x",
           "started": time.time(), "heartbeat": time.time()}
  (tmp_path / "lock.json").write_text(json.dumps(owner))
  workdir.Lock(tmp_path, settle=0).acquire().release()  # dead owner: taken
  owner["host"] = "another-host"
  (tmp_path / "lock.json").write_text(json.dumps(owner))
  with pytest.raises(workdir.WorkdirLocked, match="another-host"):
    workdir.Lock(tmp_path, settle=0).acquire()
  workdir.Lock(tmp_path, force=True, settle=0).acquire().release()


@pytest.mark.parametrize("overrides,message", [
    ({"optimizer.base_lr": -1.0}, "optimizer.base_lr = -1.0: must be > 0"),
    ({"optimizer.base_lr": 0.0}, "optimizer.base_lr = 0.0: must be > 0"),
    ({"data.image_size": 0}, "data.image_size = 0: must be > 0"),
    ({"eval_batch_size": 36}, "eval_batch_size = 36 is not divisible by the "
                              "8 devices"),
    ({"eval.periodic": "knn,bogus"}, "Unknown evaluation.s. bogus"),
    ({"model": {"name": "vit_tiny", "patch_size": 16}}, "leaves 1 patch"),
    ({"model": {"name": "vit_tiny", "patch_size": 5}}, "does not divide"),
    ({"method": "moco"},
     "valid: ae, barlow_twins, byol, dino, downstream, ijepa, mae, mveb, nnclr, "
     "rdae, sag_vicreg, simclr, swav, vicreg"),
    ({"ema": {"base": 0.99, "schedule": "step"}}, "valid: cosine"),
])
def test_invalid_configs_are_refused_before_anything_runs(
    data_dir, tmp_path, overrides, message):
  cfg = helpers.tiny_config(data_dir, **overrides)
  wd = tmp_path / "never_created"
  with pytest.raises(validate.ConfigError, match=message):
    train.train_and_evaluate(cfg, str(wd))
  assert not wd.exists()


def test_closest_fields_for_a_misspelled_override(data_dir):
  cfg = helpers.tiny_config(data_dir)
  assert "optimizer.base_lr" in validate.closest_fields(cfg, "optim.lrr")
  assert validate.closest_fields(cfg, "data.imagesize")[0] == (
      "data.image_size")


def test_cli_errors_are_one_line_with_exit_codes(data_dir, tmp_path):
  base = [sys.executable, "-m", "ssljax.cli.train"] + helpers.tiny_flags(data_dir)
  bad_field = subprocess.run(
      base + ["--config.optim.lrr=1", f"--workdir={tmp_path}"],
      env=_env(), capture_output=True, text=True, timeout=300)
  assert bad_field.returncode == 2
  assert "Closest valid fields: optimizer.base_lr" in bad_field.stderr
  bad_lr = subprocess.run(
      base + ["--config.optimizer.base_lr=-1", f"--workdir={tmp_path}"],
      env=_env(), capture_output=True, text=True, timeout=300)
  assert bad_lr.returncode == 1 and "Traceback" not in bad_lr.stderr
  assert "optimizer.base_lr = -1.0: must be > 0" in bad_lr.stderr
  bad_eval = subprocess.run(
      [sys.executable, "-m", "ssljax.cli.eval", f"--workdir={tmp_path}",
       "--evals=knn,bogus"], env=_env(), capture_output=True, text=True,
      timeout=300)
  assert bad_eval.returncode == 1 and "Unknown evaluation(s) bogus" in (
      bad_eval.stderr)


def test_disk_full_is_one_line(capsys):
  from ssljax.cli import common  # pylint: disable=g-import-not-at-top

  def fail():
    try:
      raise OSError(28, "No space left on device")
    except OSError as e:
      raise RuntimeError("async save failed") from e

  with pytest.raises(SystemExit) as exit_info:
    common.report_errors(fail, "ssljax-train")
  assert exit_info.value.code == 1
  assert "no space left on device" in capsys.readouterr().err


def test_dataset_errors_say_what_to_run(tmp_path):
  missing = tmp_path / "no_such_dir"
  with pytest.raises(ssljax.data.DatasetError, match="does not exist"):
    ssljax.data.load_source("mnist5k", "train", str(missing))
  assert not missing.exists()  # never created, even for a shipped dataset
  (tmp_path / "cifar10" / "3.0.2").mkdir(parents=True)  # a half-made folder
  with pytest.raises(ssljax.data.DatasetError, match="tfds build cifar10"):
    ssljax.data.load_source("cifar10", "train", str(tmp_path))


def test_compilation_cache_fills_and_gives_the_same_run(data_dir, tmp_path):
  cache = tmp_path / "xla_cache"
  base = ([sys.executable, "-m", "ssljax.cli.train"]
          + helpers.tiny_flags(data_dir, num_steps=2)
          + [f"--compilation_cache={cache}"])
  env = _env()
  del env["JAX_COMPILATION_CACHE_DIR"]  # the flag, not the tests' cache
  for name in ("cold", "warm"):
    subprocess.run(base + [f"--workdir={tmp_path / name}"], env=env,
                   check=True, capture_output=True, timeout=600)
    if name == "cold":
      entries = sorted(os.listdir(cache))
      assert entries  # the train step compiles in more than a second
  # The warm run loaded the cold run's programs and computed the same.
  assert sorted(os.listdir(cache)) == entries
  loss = lambda name: [r["loss"] for r in _rows(tmp_path / name)]
  assert loss("cold") == loss("warm") and len(loss("cold")) == 2
