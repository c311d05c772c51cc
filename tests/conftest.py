"""Test setup: 8 emulated CPU devices, one shared prepared TFDS data_dir."""
import os

# Must be set before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import tempfile  # pylint: disable=g-import-not-at-top

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
