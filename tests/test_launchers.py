"""launch/tpu.py, launch/slurm.py, launch/skypilot.yaml without a cloud.

The gcloud commands are checked as printed by --dry_run (CI has no cloud);
the shell the launchers send to workers / nodes is run here in bash, with a
fake ssljax-train, srun and scontrol on PATH and HOME in a temporary folder.
"""
import importlib.util
import io
import os
import shlex
import subprocess
import time
import types

import pytest
import yaml

from ssljax import preemption
from tests import helpers


def _load(name):
  path = os.path.join(helpers.ROOT, "launch", f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"launcher_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


tpu = _load("tpu")
tc = tpu.tc  # launch/tpu_commands.py, as tpu.py imports it
slurm = _load("slurm")
T = ["--name=ssl", "--zone=us-central2-b"]
RUN = ["--config=configs/quickstart.py", "--workdir=gs://bucket/qs"]


@pytest.fixture(autouse=True)
def no_gcloud(monkeypatch):
  """Never runs a real gcloud, even where one is installed and logged in."""
  def refuse(argv, **kw):
    raise AssertionError(f"a test tried to run {argv}")
  monkeypatch.setattr(tpu, "subprocess", types.SimpleNamespace(run=refuse))


def dry_run(*argv):
  """main(argv with --dry_run): (comment lines, commands as argv lists)."""
  out = io.StringIO()
  argv = [*argv[:1], *T, "--dry_run", *argv[1:]]
  assert tpu.main(argv, out=out) == 0
  lines = out.getvalue().splitlines()
  return ([l for l in lines if l.startswith("#")],
          [shlex.split(l) for l in lines if not l.startswith("#")])


def remote(cmd):
  """The shell an `ssh --command=...` command runs on each worker."""
  return next(a for a in cmd if a.startswith("--command="))[len("--command="):]


@pytest.mark.parametrize("acc,chips,workers", [
    ("v2-8", 4, 1), ("v3-32", 16, 4), ("v4-8", 4, 1), ("v4-16", 8, 2),
    ("v4-32", 16, 4), ("v5p-8", 4, 1), ("v5p-128", 64, 16),
    ("v5litepod-1", 1, 1), ("v5litepod-8", 8, 1), ("v5litepod-16", 16, 4),
    ("v5litepod-256", 256, 64), ("v6e-8", 8, 1), ("v6e-16", 16, 4),
    ("v6e-256", 256, 64)])
def test_workers_per_accelerator(acc, chips, workers):
  a = tc.parse_accelerator(acc)
  assert (a.chips, a.workers) == (chips, workers)


@pytest.mark.parametrize("acc,says", [
    ("v5e-16", "v5e is spelled v5litepod"), ("v7-8", "valid families: v2"),
    ("v4-12", "multiple of 8"), ("v6e-2", "1, 4, 8, 16"),
    ("tpu", "not FAMILY-N")])
def test_bad_accelerator_lists_valid_families(acc, says):
  with pytest.raises(ValueError, match=says) as e:
    tc.parse_accelerator(acc)
  if "FAMILY" in says or "families" in says:
    assert "v5litepod, v6e" in str(e.value)


@pytest.mark.parametrize("acc,workers,runtime", [
    ("v4-8", 1, "tpu-ubuntu2204-base"), ("v4-32", 4, "tpu-ubuntu2204-base"),
    ("v5litepod-16", 4, "v2-alpha-tpuv5-lite")])
def test_create_setup_run_dry_run(acc, workers, runtime):
  notes, cmds = dry_run("create", f"--accelerator={acc}")
  assert cmds == [["gcloud", "compute", "tpus", "tpu-vm", "create", "ssl",
                   f"--accelerator-type={acc}", f"--version={runtime}",
                   "--zone=us-central2-b"]]
  assert f"{workers} worker(s)" in notes[0] and "on-demand" in notes[0]

  notes, cmds = dry_run("setup", f"--accelerator={acc}")
  archive, scp, install = cmds
  assert archive[:3] == ["git", "-C", helpers.ROOT] and archive[-1] == "HEAD"
  assert scp[3:5] == ["tpu-vm", "scp"] and "--worker=all" in scp
  assert install[3:6] == ["tpu-vm", "ssh", "ssl"] and "--worker=all" in install
  assert '"$HOME/ssljax[tpu,gcs]"' in remote(install)
  assert f"all {workers} worker(s)" in notes[0]

  notes, cmds = dry_run("run", f"--accelerator={acc}", *RUN, "--",
                        "--config.seed=3")
  (launch,) = cmds
  assert "--worker=all" in launch
  assert ("ssljax-train\" --config=configs/quickstart.py "
          "--workdir=gs://bucket/qs --multiprocess --config.seed=3;"
          ) in remote(launch)
  assert "nohup" in remote(launch) and "--force_lock" not in remote(launch)
  assert f"all {workers} worker(s)" in notes[0]


def test_spot_and_queued_variants():
  _, (create,) = dry_run("create", "--accelerator=v4-32", "--spot")
  assert create[3:5] == ["tpu-vm", "create"] and "--spot" in create
  notes, (create, wait) = dry_run("create", "--accelerator=v5litepod-16",
                                  "--queued", "--spot", "--project=p")
  assert create == [
      "gcloud", "compute", "tpus", "queued-resources", "create", "ssl",
      "--node-id=ssl", "--accelerator-type=v5litepod-16",
      "--runtime-version=v2-alpha-tpuv5-lite", "--spot",
      "--zone=us-central2-b", "--project=p"]
  assert wait[3:6] == ["queued-resources", "describe", "ssl"]
  assert "queued, spot" in notes[0] and "4 worker(s)" in notes[0]
  _, (delete,) = dry_run("delete", "--queued")
  assert delete[3:5] == ["queued-resources", "delete"] and "--force" in delete
  _, (delete,) = dry_run("delete")
  assert delete[3:5] == ["tpu-vm", "delete"]
  _, (tail,) = dry_run("tail", "--worker=3", "--internal_ip")
  assert "--worker=3" in tail and "tail -n 100 -F" in remote(tail)
  assert "--internal-ip" in tail


def test_until_done_dry_run_shows_recreate_and_relaunch():
  _, cmds = dry_run("run", "--accelerator=v4-32", "--spot", *RUN,
                    "--until_done")
  verbs = [" ".join(c[3:5]) if c[0] == "gcloud" else c[3] for c in cmds]
  assert verbs == ["tpu-vm ssh", "tpu-vm describe", "tpu-vm ssh",  # poll
                   "tpu-vm delete", "tpu-vm create", "archive", "tpu-vm scp",
                   "tpu-vm ssh", "tpu-vm ssh", "tpu-vm ssh"]
  launches = [remote(c) for c in cmds if "nohup" in " ".join(c)]
  assert len(launches) == 3  # first launch, after recreate, after exit 75
  assert ["--force_lock" in l for l in launches] == [False, True, False]
  assert "--spot" in cmds[4]


@pytest.mark.parametrize("state,statuses,action", [
    ("READY", ["running"] * 4, "wait"), ("CREATING", [], "wait"),
    ("READY", ["running"] * 3, "wait"),  # a worker did not answer
    ("PREEMPTED", [], "recreate"), ("SUSPENDED", [], "recreate"),
    ("STOPPED", [], "wait"),  # stopped by someone: not deleted
    ("NOT_FOUND", [], "recreate"), ("READY", ["exit=75"] * 4, "relaunch"),
    ("READY", ["lost"] * 4, "relaunch"), ("READY", ["missing"] * 4,
                                          "reinstall"),
    ("READY", ["exit=0"] * 4, "done"),
    ("READY", ["exit=1"] + ["running"] * 3, "failed")])
def test_decide(state, statuses, action):
  assert tc.decide(state, statuses, 4) == action


class FakeGcloud:
  """Answers the state and poll queries from scripts; records the rest."""

  def __init__(self, states, polls):
    self.states, self.polls, self.ran = list(states), list(polls), []
    self.dry_run = False

  def __call__(self, argv, check=True, capture=False):
    del check, capture
    if "describe" in argv:
      return 0, self.states.pop(0) + "\n", ""
    if tc.STATUS_TAG in " ".join(argv):
      return 0, "".join(f"{tc.STATUS_TAG} {s}\n" for s in self.polls.pop(0)), ""
    self.ran.append(argv)
    return 0, "", ""

  def note(self, text):
    pass

  def sleep(self, seconds):
    pass


def _opts(**kw):
  return types.SimpleNamespace(
      config="configs/quickstart.py", workdir="gs://b/qs", train_args=[],
      runtime_version=None, create_flag=[], poll_seconds=0, ref="HEAD",
      extras="tpu,gcs", python="3.12", max_restarts=5, **kw)


def test_until_done_loop_recreates_then_relaunches_then_stops():
  run = FakeGcloud(
      states=["READY", "READY", "PREEMPTED", "READY", "READY"],
      polls=[["exit=0"] * 4, ["running"] * 4, ["exit=75"] * 4,
             ["exit=0"] * 4])
  t = tc.Tpu("ssl", "z", spot=True)
  assert tpu.until_done(run, t, tc.parse_accelerator("v4-32"), _opts()) == 0
  steps = [" ".join(c[3:5]) if c[0] == "gcloud" else c[3] for c in run.ran]
  assert steps == ["tpu-vm ssh",  # first launch
                   "tpu-vm delete", "tpu-vm create", "status", "archive",
                   "tpu-vm scp", "tpu-vm ssh", "tpu-vm ssh",  # recreate
                   "tpu-vm ssh"]  # relaunch after exit 75
  force = ["--force_lock" in remote(c) for c in run.ran if "nohup" in str(c)]
  assert force == [False, True, False]


def test_until_done_loop_stops_on_a_real_error():
  run = FakeGcloud(states=["READY", "READY"],
                   polls=[["running"] * 4, ["exit=1"] + ["exit=0"] * 3])
  t = tc.Tpu("ssl", "z")
  assert tpu.until_done(run, t, tc.parse_accelerator("v4-32"), _opts()) == 1
  assert len(run.ran) == 0  # already running: watched, never relaunched


def _fake_bin(tmp_path, name, body):
  path = tmp_path / "bin" / name
  path.parent.mkdir(exist_ok=True)
  path.write_text("#!/bin/sh\n" + body)
  path.chmod(0o755)
  return path


def _wait_for(path, seconds=10):
  end = time.time() + seconds
  while not path.exists() and time.time() < end:
    time.sleep(0.05)
  return path.exists()


def test_worker_shell_launches_detached_and_reports_exit_codes(tmp_path):
  home = tmp_path / "home"
  (home / "ssljax").mkdir(parents=True)
  fake = _fake_bin(tmp_path, "ssljax-train",
                   'echo "$@" > "$HOME/args"; echo training; exit 75\n')
  (home / "ssljax-venv" / "bin").mkdir(parents=True)
  (home / "ssljax-venv" / "bin" / "ssljax-train").symlink_to(fake)
  env = dict(os.environ, HOME=str(home))
  t = tc.Tpu("ssl", "z")
  sh = lambda cmd: subprocess.run(["bash", "-c", remote(cmd)], env=env,
                                  capture_output=True, text=True, check=True)
  poll = lambda: tc.parse_statuses(sh(tc.poll_command(t)).stdout)
  assert poll() == ["missing"]
  sh(tc.launch_command(t, tc.train_args(
      "configs/quickstart.py", "gs://b/q", ["--config.seed=2"], True)))
  assert _wait_for(home / "ssljax-logs" / "train.exit")
  assert poll() == ["exit=75"]
  assert (home / "args").read_text().split() == [
      "--config=configs/quickstart.py", "--workdir=gs://b/q", "--multiprocess",
      "--config.seed=2", "--force_lock"]
  log = (home / "ssljax-logs" / "train.log").read_text()
  assert "launch" in log and "training" in log
  (home / "ssljax-logs" / "train.exit").unlink()
  (home / "ssljax-logs" / "train.pid").write_text("999999999")  # no such pid
  assert poll() == ["lost"]
  setup = tc.setup_commands(t)[2]
  subprocess.run(["bash", "-n", "-c", remote(setup)], check=True)


def test_bad_run_input_is_refused():
  for workdir, says in [("/tmp/x", "gs://"), ("gs://b/x", None)]:
    if says:
      with pytest.raises(ValueError, match=says):
        tc.train_args("configs/quickstart.py", workdir)
  with pytest.raises(ValueError, match="not a file"):
    tc.train_args("configs/nope.py", "gs://b/x")
  with pytest.raises(ValueError, match="use run's own"):
    tc.train_args("configs/quickstart.py", "gs://b/x", ["--workdir=gs://c"])
  with pytest.raises(SystemExit):  # argparse: --name
    tpu.main(["create", "--name=Bad_Name", "--zone=z", "--accelerator=v4-8",
              "--dry_run"])
  with pytest.raises(SystemExit):  # --dry_run after -- would not be dry
    tpu.main(["run", *T, "--accelerator=v4-8", *RUN, "--", "--dry_run"])


@pytest.mark.parametrize("per,tasks", [("gpu", 8), ("node", 1)])
def test_slurm_script_renders(per, tasks):
  text = slurm.render(2, 8, "configs/quickstart.py", "/shared/run", [
      "--config.seed=1"], per=per, partition="gpu")
  assert f"#SBATCH --nodes=2\n#SBATCH --ntasks-per-node={tasks}\n" \
         "#SBATCH --gpus-per-node=8\n" in text
  assert "#SBATCH --signal=TERM@300\n#SBATCH --requeue\n" in text
  assert "#SBATCH --partition=gpu" in text
  assert ("\nsrun ssljax-train --config=configs/quickstart.py "
          "--workdir=/shared/run --multiprocess --config.seed=1 $FORCE_LOCK\n"
          ) in text
  assert f"{2 * tasks} process(es)" in text
  assert ("export JAX_LOCAL_DEVICE_IDS=0,1,2,3,4,5,6,7" in text) == (
      per == "node")
  subprocess.run(["bash", "-n"], input=text, text=True, check=True)
  with pytest.raises(ValueError, match="absolute"):
    slurm.render(1, 8, "configs/quickstart.py", "runs/x")
  with pytest.raises(ValueError, match=">= 1"):
    slurm.render(0, 8, "configs/quickstart.py", "/x")


@pytest.mark.parametrize("code,restarts,requeued,force", [
    (75, None, True, False), (75, "1", True, True), (75, "20", False, True),
    (0, None, False, False), (1, None, False, False)])
def test_slurm_script_requeues_on_exit_75(tmp_path, code, restarts, requeued,
                                          force):
  _fake_bin(tmp_path, "srun", 'exec "$@"\n')
  _fake_bin(tmp_path, "ssljax-train", f'echo "$@" > {tmp_path}/args; '
            f"exit {code}\n")
  _fake_bin(tmp_path, "scontrol", f'echo "$@" > {tmp_path}/scontrol\n')
  text = slurm.render(1, 2, "configs/quickstart.py", "/shared/run",
                      repo=str(tmp_path),
                      setup_lines=[f'export PATH="{tmp_path}/bin:$PATH"'])
  env = dict(os.environ, SLURM_JOB_ID="42")
  env.pop("SLURM_RESTART_COUNT", None)
  env.update({"SLURM_RESTART_COUNT": restarts} if restarts else {})
  p = subprocess.run(["bash"], input=text, text=True, env=env,
                     capture_output=True, check=False)
  assert p.returncode == code, p.stderr
  assert (tmp_path / "scontrol").exists() == requeued
  if requeued:
    assert (tmp_path / "scontrol").read_text().split() == ["requeue", "42"]
  assert ("--force_lock" in (tmp_path / "args").read_text()) == force


def test_jax_slurm_autodetection_is_what_the_template_assumes(monkeypatch):
  from jax._src import clusters  # pylint: disable=g-import-not-at-top
  for k in list(os.environ):
    if k.startswith(("SLURM_", "OMPI_", "PMI_", "KUBERNETES_")):
      monkeypatch.delenv(k)
  env = {"SLURM_JOB_ID": "1234", "SLURM_STEP_NODELIST": "gpu[007-008]",
         "SLURM_NTASKS": "16", "SLURM_PROCID": "11", "SLURM_LOCALID": "3",
         "SLURM_STEP_NUM_NODES": "2"}
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  detect = clusters.ClusterEnv.auto_detect_unset_distributed_params
  addr, n, i, local = detect(None, None, None, None, None, None)
  assert (addr.split(":")[0], n, i, local) == ("gpu007", 16, 11, [3])
  # One process per node: jax alone would give it only GPU SLURM_LOCALID;
  # the ids the template exports (JAX_LOCAL_DEVICE_IDS) are kept.
  monkeypatch.setenv("SLURM_NTASKS", "2")
  monkeypatch.setenv("SLURM_LOCALID", "0")
  assert detect(None, None, None, None, None, None)[3] == [0]
  assert detect(None, None, None, list(range(8)), None, None)[3] == list(
      range(8))


def test_skypilot_task(tmp_path):
  path = os.path.join(helpers.ROOT, "launch", "skypilot.yaml")
  task = yaml.safe_load(open(path))
  assert set(task) == {"name", "workdir", "num_nodes", "resources", "envs",
                       "setup", "run"}
  r = task["resources"]
  assert r["use_spot"] is True and ":" in r["accelerators"]
  assert r["job_recovery"]["recover_on_exit_codes"] == [preemption.EXIT_CODE]
  assert all(isinstance(v, str) for v in task["envs"].values())
  assert '".[cuda,gcs]"' in task["setup"]
  fake = _fake_bin(tmp_path, "ssljax-train",
                   f'echo "$@" > {tmp_path}/args\n')
  (tmp_path / "ssljax-venv" / "bin").mkdir(parents=True)
  (tmp_path / "ssljax-venv" / "bin" / "ssljax-train").symlink_to(fake)
  env = dict(os.environ, HOME=str(tmp_path), **task["envs"])
  env.update(WORKDIR="gs://b/run", TRAIN_ARGS="--config.seed=1",
             SKYPILOT_NODE_IPS="10.0.0.5\n10.0.0.6", SKYPILOT_NUM_NODES="2",
             SKYPILOT_NODE_RANK="1")
  subprocess.run(["bash", "-c", task["run"]], env=env, check=True)
  assert (tmp_path / "args").read_text().split() == [
      f"--config={task['envs']['CONFIG']}", "--workdir=gs://b/run",
      "--coordinator_address=10.0.0.5:8476", "--num_processes=2",
      "--process_id=1", "--force_lock", "--config.seed=1"]
  env["WORKDIR"] = "/local/disk"
  p = subprocess.run(["bash", "-c", task["run"]], env=env, check=False,
                     capture_output=True, text=True)
  assert p.returncode == 2 and "gs://" in p.stderr


def test_launchers_use_ssljax_preemption_code():
  assert tc.PREEMPTED_EXIT_CODE == slurm.PREEMPTED_EXIT_CODE == (
      preemption.EXIT_CODE)
