"""What the command-line tools share: quiet library logs, one-line errors.

Exit codes: 0 done; 1 an error whose message says what to do (--traceback
for the whole trace); 2 a bad command line; 75 stopped by SIGTERM / SIGINT
after checkpointing (`ssljax.preemption.EXIT_CODE`: run it again to resume).
"""

import logging as std_logging
import os
import sys

from absl import logging
import jax

from ssljax import checkpoint
from ssljax import files
from ssljax import preemption
from ssljax import validate
from ssljax import workdir as workdir_lib
from ssljax.data import sources

# Errors whose message says what to do: printed alone, without a trace.
# (FloatingPointError: train.NonFiniteError, checkpoint.NonFiniteState;
# ValueError: files.DamagedFile too; OSError subclasses: files.DiskFull,
# workdir.WorkdirUnusable.)
USER_ERRORS = (validate.ConfigError, sources.DatasetError,
               workdir_lib.WorkdirLocked, workdir_lib.WorkdirUnusable,
               checkpoint.DamagedCheckpoints, files.DiskFull,
               FloatingPointError, ValueError, FileNotFoundError)


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


def report_errors(fn, prog, traceback=False):
  """Runs fn(); known errors become one line on stderr and an exit code."""
  try:
    return fn()
  except preemption.Preempted as e:
    print(f"{prog}: {e}", file=sys.stderr)
    sys.exit(preemption.EXIT_CODE)
  except USER_ERRORS as e:
    if traceback:
      raise
    print(f"{prog}: error: {e}\n(--traceback for the full trace)",
          file=sys.stderr)
    sys.exit(1)
  except Exception as e:  # pylint: disable=broad-except
    # Disk full outside training (ssljax-eval's JSON, ...): orbax's async
    # writers wrap it in many types.
    if traceback or not files.disk_full(e):
      raise
    print(f"{prog}: error: no space left on device while writing "
          f"({checkpoint.first_line(e, 200)}). Free space and run the same "
          "command again.", file=sys.stderr)
    sys.exit(1)
