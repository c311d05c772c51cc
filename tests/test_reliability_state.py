"""Reliability, round 2: finite and intact checkpoints, full disks, signals at
any moment, damaged workdir files, the lock's races (issue 25)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import checkpoint
from ssljax import files
from ssljax import monitor
from ssljax import preemption
from ssljax import train
from ssljax import validate
from ssljax import workdir
import ssljax.data
from tests import helpers
from tests.test_reliability import _env


def _leaves_equal(a, b):
  for x, y in zip(jax.tree.leaves(jax.device_get(a)),
                  jax.tree.leaves(jax.device_get(b))):
    np.testing.assert_array_equal(x, y)


# ----------------------------------------------------------------------------
# Finite states only.
# ----------------------------------------------------------------------------
def test_a_nan_update_from_finite_gradients_is_never_checkpointed(
    data_dir, tmp_path, monkeypatch):
  # base_lr=inf: step 1's loss and gradients are finite, its update is not.
  # (validate refuses inf; the step's own check is what is tested here.)
  monkeypatch.setattr(validate, "check", lambda *a, **k: None)
  cfg = helpers.tiny_config(data_dir, num_steps=4, stop_after_steps=1,
                            **{"optimizer.base_lr": float("inf"),
                               "checkpoint.every": 1})
  wd = str(tmp_path / "run")
  with pytest.raises(train.NonFiniteError, match="at step 1 "):
    train.train_and_evaluate(cfg, wd)
  mngr = checkpoint.manager(wd, cfg.checkpoint, read_only=True)
  assert mngr.all_steps() == []


def test_save_refuses_a_non_finite_state(tmp_path):
  class It:
    def get_state(self):
      return {"pos": 0}

  mngr = checkpoint.manager(tmp_path, helpers.load_config(
      "quickstart").checkpoint)
  state = {"w": jnp.array([1.0, jnp.nan]), "step": jnp.int32(3)}
  with pytest.raises(checkpoint.NonFiniteState, match=r"1 arrays .*\['w'\]"):
    checkpoint.save(mngr, 3, state, It())
  mngr.wait_until_finished()
  assert mngr.all_steps() == []


# ----------------------------------------------------------------------------
# Checksums.
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int32", "uint32",
                                   "uint8", "bool"])
def test_fingerprint_sees_every_single_bit_flip(dtype):
  rng = np.random.default_rng(0)
  x = np.asarray(rng.integers(0, 200, size=(5, 7)), dtype=np.float32)
  x = np.asarray(jnp.asarray(x).astype(dtype))
  ref = checkpoint.fingerprint({"x": jnp.asarray(x)})[0]
  raw = x.reshape(-1).view(np.uint8).copy()
  for byte in range(0, raw.size, 3):
    for bit in (0, 5, 7):
      flipped = raw.copy()
      flipped[byte] ^= 1 << bit
      y = flipped.view(x.dtype).reshape(x.shape)
      if dtype == "bool" and bit:
        continue  # a bool byte other than 0/1 is not a bool value
      assert checkpoint.fingerprint({"x": jnp.asarray(y)})[0] != ref


def _flip_bytes(step_dir, n=16, seed=0, mask=0xFF, every_file=False):
  """XORs `n` bytes in the middle of the largest array data file (where
  array values lie, uncompressed) with `mask`: 0xFF makes NaN / huge
  values, 0x01 finite values that differ in their last bit."""
  data = []
  for r, _, fs in os.walk(os.path.join(step_dir, "state")):
    if os.path.basename(r) == "d":
      data += [os.path.join(r, f) for f in fs]
  rng = np.random.default_rng(seed)
  for path in data if every_file else [max(data, key=os.path.getsize)]:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
      for pos in rng.integers(size // 4, 3 * size // 4, n):
        f.seek(int(pos))
        b = f.read(1)
        f.seek(int(pos))
        f.write(bytes([b[0] ^ mask]))


class _It:
  def get_state(self):
    return {"pos": 0}

  def set_state(self, state):
    del state


@pytest.mark.parametrize("mask", [0xFF, 0x01])
def test_bit_rot_is_never_restored(tmp_path, mask):
  # Tensorstore stores these arrays uncompressed and checks nothing: before
  # the checksums, both damages restored silently with changed values.
  rng = np.random.default_rng(0)
  state = {"a": jnp.asarray(rng.normal(size=(64, 64)), jnp.float32),
           "b": jnp.asarray(rng.normal(size=(1000,)), jnp.float32),
           "step": jnp.int32(3)}
  ccfg = helpers.load_config("quickstart").checkpoint
  ccfg.unlock()["async"] = False
  mngr = checkpoint.manager(tmp_path, ccfg)
  for step in (1, 2):
    checkpoint.save(mngr, step, state, _It())
  _flip_bytes(str(tmp_path / "checkpoints" / "2"), mask=mask)
  with pytest.raises(checkpoint.IntegrityError,
                     match="checksum mismatch|NaN or Inf"):
    checkpoint.restore(mngr, 2, state, _It())
  restored, resumed = checkpoint.restore_latest(mngr, state, _It())
  assert resumed and mngr.all_steps() == [1]  # 2 moved aside
  _leaves_equal(restored, state)


def test_finite_values_that_changed_fail_the_checksum(tmp_path,
                                                     monkeypatch):
  # The files hold `changed`, the checksums are those of `state`: what a
  # flip in a low mantissa bit leaves (finite, wrong).
  state = {"a": jnp.arange(12.0).reshape(3, 4), "n": jnp.int32(7)}
  changed = {"a": state["a"].at[1, 2].add(1e-6), "n": jnp.int32(7)}
  ccfg = helpers.load_config("quickstart").checkpoint
  ccfg.unlock()["async"] = False
  mngr = checkpoint.manager(tmp_path, ccfg)
  real = checkpoint.fingerprint
  monkeypatch.setattr(checkpoint, "fingerprint",
                      lambda tree: real(state) if tree is changed
                      else real(tree))
  checkpoint.save(mngr, 1, changed, _It())
  monkeypatch.setattr(checkpoint, "fingerprint", real)
  with pytest.raises(checkpoint.IntegrityError,
                     match=r"checksum mismatch in 1 of 2 arrays \(e.g. \['a'\]"):
    checkpoint.restore(mngr, 1, state, _It())


def test_bit_rot_in_the_newest_checkpoint_falls_back_to_an_older_one(
    data_dir, tmp_path):
  wd = str(tmp_path / "run")
  cfg = helpers.tiny_config(data_dir, num_steps=4)
  train.train_and_evaluate(cfg, wd)
  _flip_bytes(os.path.join(wd, "checkpoints", "4"), mask=0x01)
  longer = helpers.tiny_config(data_dir, num_steps=6)
  resumed = train.train_and_evaluate(longer, wd, override_config=True)
  moved = os.listdir(os.path.join(wd, "checkpoints_damaged"))
  reason = [m for m in moved if m.endswith(".reason.txt")]
  assert len(reason) == 1 and reason[0].startswith("4-")
  full = train.train_and_evaluate(longer, str(tmp_path / "full"))
  _leaves_equal(full, resumed)  # resumed from step 2, exactly


def test_eval_restore_checks_the_checksums(tiny_workdir, tmp_path):
  from ssljax import saved_runs  # pylint: disable=g-import-not-at-top
  wd = str(tmp_path / "copy")
  shutil.copytree(tiny_workdir, wd)
  # Every file: which one holds the params (the only arrays this restore
  # reads) varies from run to run.
  _flip_bytes(os.path.join(wd, "checkpoints", "4"), seed=1, mask=0x01,
              every_file=True)
  with pytest.raises(Exception, match="checksum|NaN|Error"):
    saved_runs.load(wd, step=4)
  saved_runs.load(wd, step=2)  # the intact one loads


# ----------------------------------------------------------------------------
# A full disk.
# ----------------------------------------------------------------------------
def _mount_tmpfs(path, size):
  """Mounts a tmpfs of `size` at `path`; False where this user cannot."""
  if os.geteuid() != 0 or not shutil.which("mount"):
    return False
  r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                      path], capture_output=True, text=True)
  return r.returncode == 0


def test_a_full_disk_ends_the_run_with_one_line_and_no_hang(data_dir,
                                                            tmp_path):
  mnt = str(tmp_path / "small_disk")
  os.makedirs(mnt)
  # The first checkpoint of the tiny run fits, the second does not.
  if not _mount_tmpfs(mnt, "2000k"):
    pytest.skip("needs root to mount a small tmpfs (a real full disk)")
  try:
    wd = os.path.join(mnt, "run")
    cmd = ([sys.executable, "-m", "ssljax.cli.train"]
           + helpers.tiny_flags(data_dir, num_steps=400)
           + ["--config.checkpoint.every=5", "--config.checkpoint.keep=1000",
              f"--workdir={wd}"])
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True,
                       timeout=400)
    lines = [l for l in r.stderr.splitlines() if "ssljax-train: error" in l]
    assert r.returncode == 1, r.stderr[-3000:]
    assert len(lines) == 1, r.stderr[-3000:]
    assert "No space left on device while writing" in lines[0]
    assert re.search(r"run the same command again: it (resumes from step \d+"
                     r"|starts from step 0)", lines[0]), lines[0]
    assert not os.path.exists(os.path.join(wd, "lock.json"))
  finally:
    subprocess.run(["umount", "-l", mnt], check=False)


@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_tensorboard_thread_raises_instead_of_blocking(tmp_path):
  writer = monitor.Writer(str(tmp_path))
  ev = writer.tb.file_writer.event_writer

  def fail(event):
    raise OSError(28, "No space left on device")

  ev._ev_writer.write_event = fail  # pylint: disable=protected-access
  outcome = []

  def write():
    try:
      # 12 metrics a step: tensorboardX's default queue (10) blocked the
      # step's eleventh add_scalar forever once the thread had died.
      for step in range(1, 200):
        writer.scalars(step, {f"m{i}": 1.0 for i in range(12)})
        time.sleep(0.01)
    except OSError as e:
      outcome.append(e)

  t = threading.Thread(target=write, daemon=True)
  t.start()
  t.join(timeout=30)
  assert not t.is_alive(), "Writer.scalars blocked on a dead thread"
  assert outcome and files.disk_full(outcome[0])
  writer.close()  # returns: does not wait on the dead thread
  # tensorboardX's atexit hook closes the event writer again; it must not
  # wait on the dead thread either (it hung the process at exit).
  t = threading.Thread(target=ev.close, daemon=True)
  t.start()
  t.join(timeout=30)
  assert not t.is_alive(), "tensorboardX's atexit close blocked"


# ----------------------------------------------------------------------------
# Signals at any moment.
# ----------------------------------------------------------------------------
def test_sigterm_during_start_up_exits_75_and_leaves_no_lock(data_dir,
                                                             tmp_path):
  wd = str(tmp_path / "run")
  proc = subprocess.Popen(
      [sys.executable, "-m", "ssljax.cli.train"] + helpers.tiny_flags(data_dir)
      + [f"--workdir={wd}"], env=_env(), stderr=subprocess.PIPE, text=True)
  time.sleep(1.5)  # inside the imports
  proc.send_signal(signal.SIGTERM)
  rc = proc.wait(timeout=120)
  err = proc.stderr.read()
  assert rc == preemption.EXIT_CODE, err[-2000:]
  assert "before the first checkpoint: nothing to save yet" in err
  assert not os.path.exists(os.path.join(wd, "lock.json"))


def test_sigterm_during_the_final_evaluation_stops_it_and_a_rerun_redoes_it(
    data_dir, tmp_path, monkeypatch):
  wd = str(tmp_path / "run")
  cfg = helpers.tiny_config(data_dir, num_steps=2, summary_eval=True)
  summary = monitor.Evaluator.summary

  def signal_then_summary(self, variables, step, interrupt=None):
    if step > 0:  # the final evaluation, not the random init's
      os.kill(os.getpid(), signal.SIGTERM)
    return summary(self, variables, step, interrupt)

  monkeypatch.setattr(monitor.Evaluator, "summary", signal_then_summary)
  with pytest.raises(preemption.Preempted, match="during the final eval"):
    train.train_and_evaluate(cfg, wd)
  done = json.load(open(os.path.join(wd, "summary.json")))
  assert "random_init" in done and "trained" not in done
  monkeypatch.setattr(monitor.Evaluator, "summary", summary)
  train.train_and_evaluate(cfg, wd)  # redoes only the final evaluation
  done = json.load(open(os.path.join(wd, "summary.json")))
  assert done["trained"]["step"] == 2

  def no_recompute(*a, **k):
    raise AssertionError("a finished workdir was evaluated again")

  monkeypatch.setattr(monitor.Evaluator, "summary", no_recompute)
  train.train_and_evaluate(cfg, wd)  # re-prints the summary only
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  final = [r for r in rows if any(k.startswith("final/") for k in r)]
  assert len(final) == 1
  assert [r["step"] for r in rows if "loss" in r] == [1, 2]


def test_a_misspelled_label_key_is_refused_before_config_json(data_dir,
                                                              tmp_path):
  wd = tmp_path / "run"
  cfg = helpers.tiny_config(data_dir, **{"data.label_key": "nolabel"})
  with pytest.raises(ssljax.data.DatasetError, match="no key.s. nolabel"):
    train.train_and_evaluate(cfg, str(wd))
  assert not (wd / "config.json").exists()


# ----------------------------------------------------------------------------
# Damaged workdir files.
# ----------------------------------------------------------------------------
def test_garbled_metrics_lines_are_kept_aside_with_their_line_numbers(
    tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1, "loss": 2.0}\n[1, 2]\n{"step": 2, "lo\n'
                  '{"step": 3, "loss": 1.0}\n')
  monitor.Writer(str(tmp_path), resume_step=2).close()
  assert [json.loads(l)["step"] for l in open(path)] == [1]
  aside = (tmp_path / "metrics.jsonl.garbled").read_text().splitlines()
  assert [l.split(": ", 1)[0] for l in aside] == [f"{path}:2", f"{path}:3"]


@pytest.mark.parametrize("text", ["[1, 2]", '{"method": "vic', "7"])
def test_a_damaged_config_json_is_named(tmp_path, text):
  (tmp_path / "config.json").write_text(text)
  with pytest.raises(files.DamagedFile, match="config.json is damaged"):
    checkpoint.check_config(str(tmp_path), helpers.load_config("quickstart"))


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
  path = tmp_path / "file"
  path.write_text("x")
  with pytest.raises(workdir.WorkdirUnusable, match="is a file"):
    workdir.check_usable(str(path))


# ----------------------------------------------------------------------------
# The lock.
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["[]", "{not json", json.dumps(
    {"host": "h", "pid": "abc", "token": "t", "heartbeat": 0})])
def test_a_damaged_lock_is_taken_over(tmp_path, text):
  (tmp_path / workdir.NAME).write_text(text)
  workdir.Lock(tmp_path, settle=0).acquire().release()
  assert not (tmp_path / workdir.NAME).exists()


def test_two_runs_claiming_at_once_exactly_one_wins(tmp_path):
  for _ in range(5):
    barrier, results = threading.Barrier(2), []

    def claim():
      lock = workdir.Lock(tmp_path, settle=0)
      barrier.wait()
      try:
        results.append(lock.acquire())
      except workdir.WorkdirLocked as e:
        results.append(e)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    won = [r for r in results if isinstance(r, workdir.Lock)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1, results
    assert f"pid {os.getpid()}" in str(lost[0])  # names the winner
    won[0].release()


def test_an_owner_whose_lock_was_taken_over_stops(tmp_path):
  first = workdir.Lock(tmp_path, heartbeat_every=0.05, settle=0).acquire()
  first.check(1)
  second = workdir.Lock(tmp_path, force=True, settle=0).acquire()
  deadline = time.time() + 10
  while first.taken_by is None and time.time() < deadline:
    time.sleep(0.05)
  with pytest.raises(workdir.WorkdirLocked, match="taken over"):
    first.check(7)
  second.release()
  first.release()


def test_preemption_handlers_are_installed_without_importing_jax():
  code = ("import sys; from ssljax import preemption; preemption.install(); "
          "import signal; assert signal.getsignal(signal.SIGTERM) is "
          "preemption._handle; assert 'jax' not in sys.modules")
  subprocess.run([sys.executable, "-c", code], check=True, env=_env(),
                 cwd=tempfile.gettempdir())
