"""What the four commands share: one-line errors and their exit codes.

Exit codes: 0 done; 1 an error whose message says what to do (--traceback
for the whole trace); 2 a bad command line; 75 stopped by SIGTERM / SIGINT
after checkpointing (`ssljax.preemption.EXIT_CODE`: run it again to resume).
"""

import sys

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
