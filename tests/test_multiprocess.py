"""A 2-process run on localhost (CPU collectives) matches the 1-process run."""
import json
import os
import socket
import subprocess
import sys

import numpy as np

from tests import helpers


def _env(devices):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = helpers.ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _losses(workdir):
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  return np.array([r["loss"] for r in rows])


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one_process(data_dir, tmp_path):
  cmd = [sys.executable, "-m", "ssljax.main"] + helpers.tiny_flags(data_dir)
  one = str(tmp_path / "one")
  subprocess.run(cmd + [f"--workdir={one}"], env=_env(4), check=True,
                 timeout=600)
  two = str(tmp_path / "two")
  addr = f"localhost:{_free_port()}"
  procs = [subprocess.Popen(
      cmd + [f"--workdir={two}", f"--coordinator_address={addr}",
             "--num_processes=2", f"--process_id={i}"], env=_env(2))
           for i in range(2)]
  assert [p.wait(timeout=600) for p in procs] == [0, 0]
  a, b = _losses(one), _losses(two)
  assert len(a) == len(b) == 3
  np.testing.assert_allclose(a, b, rtol=1e-5)
