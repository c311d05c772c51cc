"""Test setup: 8 emulated CPU devices, one shared prepared TFDS data_dir."""
import os

# Must be set before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import socket  # pylint: disable=g-import-not-at-top
import subprocess  # pylint: disable=g-import-not-at-top
import sys  # pylint: disable=g-import-not-at-top
import tempfile  # pylint: disable=g-import-not-at-top
import time  # pylint: disable=g-import-not-at-top
import urllib.request  # pylint: disable=g-import-not-at-top

import jax  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

# Many tests compile the same tiny train step in fresh runs (resume, policies);
# a persistent cache (shared by the xdist workers) compiles each once.
jax.config.update("jax_compilation_cache_dir",
                  os.path.join(tempfile.gettempdir(), "ssljax_test_jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """A data_dir with hierarchical_shapes/32_small and mnist5k prepared."""
  import ssljax.data  # pylint: disable=g-import-not-at-top
  d = str(tmp_path_factory.mktemp("tfds"))
  ssljax.data.load_source("hierarchical_shapes/32_small", "train", d)
  ssljax.data.load_source("mnist5k", "train", d)
  return d


@pytest.fixture(scope="session")
def shapes_train(data_dir):
  import ssljax.data  # pylint: disable=g-import-not-at-top
  return ssljax.data.load_source("hierarchical_shapes/32_small", "train",
                                 data_dir)


@pytest.fixture(scope="session")
def tiny_workdir(data_dir, tmp_path_factory):
  """A finished tiny run (4 steps, checkpoints at 2 and 4, summary.json,
  coarse and super labels evaluated) plus ssljax-eval's eval_step4.json."""
  from ssljax import saved_runs  # pylint: disable=g-import-not-at-top
  from ssljax import train  # pylint: disable=g-import-not-at-top
  from tests import helpers  # pylint: disable=g-import-not-at-top
  wd = str(tmp_path_factory.mktemp("tiny_run"))
  cfg = helpers.tiny_config(data_dir, num_steps=4, summary_eval=True, **{
      "eval.coarse_label_keys": ("coarse_label", "super_label")})
  train.train_and_evaluate(cfg, wd)
  saved_runs.evaluate(wd, names="knn,ncc")
  return wd


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture
def bucket(monkeypatch):
  """gs://ssljax-test on a local GCS emulator (tests/gcs_emulator.py), with
  every GCS client of this process pointed at it."""
  storage = pytest.importorskip("google.cloud.storage")
  from tests import gcs_emulator  # pylint: disable=g-import-not-at-top
  port = _free_port()
  # Not stopped after the test: tensorboardX flushes its gs:// event files
  # from a thread at interpreter exit, which must still find the server.
  subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, os.path.join(os.path.dirname(__file__),
                                    "gcs_emulator.py"), str(port)],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  for _ in range(200):
    try:
      urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
      break
    except OSError:
      time.sleep(0.05)
  for k, v in gcs_emulator.settings(port).items():
    monkeypatch.setenv(k, v)
  storage.Client(project="ssljax-test").create_bucket("ssljax-test")
  return "gs://ssljax-test"


# The longest tests (1–3 minutes each on 2 cores), longest first, started
# before all others: xdist hands out tests in collection order, and one of
# these collected last would leave the other worker idle at the end.
SLOW_FIRST = (
    "test_multiprocess.py::",
    "test_reliability.py::test_compilation_cache",
    "test_reliability.py::test_sigterm_checkpoints",
    "test_experiments.py::test_sag_vicreg_writes",
    "test_experiments.py::test_learning_by_reconstruction",
    "test_train.py::test_interrupted_run_is_bit_identical",
    "test_reliability.py::test_damaged_newest",
    "test_gcs.py::",
    "test_fsdp.py::test_checkpoint_written",
)


def pytest_collection_modifyitems(items):
  def rank(item):
    return next((i for i, s in enumerate(SLOW_FIRST) if s in item.nodeid),
                len(SLOW_FIRST))
  items.sort(key=rank)  # stable: every other test keeps its place
