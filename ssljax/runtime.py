"""Process settings every program applies first: logs, the compile cache.

The console scripts (ssljax.cli), the experiments (ssljax.experiments) and
notebooks call these before they train or evaluate: library INFO logs
hidden unless asked for, and the persistent XLA compilation cache.
"""

import logging as std_logging
import os

from absl import logging
import jax


class _QuietLibraries(std_logging.Filter):
  """Hides INFO records of libraries (orbax writes ~50 lines a run)."""

  def filter(self, record):
    return (record.levelno >= std_logging.WARNING
            or "/ssljax/" in record.pathname.replace("\\", "/"))


def quiet_library_logs(verbosity):
  """Unless --verbosity ≥ 1: library INFO lines hidden, ssljax's kept."""
  if verbosity < 1:
    logging.get_absl_handler().addFilter(_QuietLibraries())


def default_compilation_cache():
  """$JAX_COMPILATION_CACHE_DIR if set, else ~/.cache/ssljax/jax."""
  return os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "ssljax", "jax")


def use_compilation_cache(path):
  """Keeps the compiled XLA programs that took ≥ 1 s in `path` (a folder,
  local or gs://; "" turns it off), so a later run with the same config
  shapes loads them instead of compiling (the quickstart's train step
  takes 17–25 s to compile on 2 CPU cores). Only compile time changes:
  the cached executable is the one XLA would build again."""
  if path:
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
