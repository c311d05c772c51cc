"""Stop cleanly on preemption: SIGTERM / SIGINT -> checkpoint -> exit 75.

The training loop asks `guard.should_stop(step)` after every step. When it
says yes, the loop writes a synchronous checkpoint of that step, flushes the
metrics and raises `Preempted`; the CLI prints one line and exits with
`EXIT_CODE` (75, EX_TEMPFAIL: "temporary failure, run again"), which the
launchers treat as "relaunch and resume". A second signal aborts at once.

Single process: Python signal handlers for SIGTERM (Cloud TPU / GCE
preemption, SLURM, `kill`) and SIGINT (Ctrl-C) set a flag.
Multi-process: every process must stop at the same step, so SIGTERM is left
to JAX's preemption sync manager (started by `jax.distributed.initialize`,
which also receives Cloud TPU maintenance / preemption notices), and the
loop asks `multihost_utils.reached_preemption_sync_point(step)`, which says
yes on every process at the same step. SIGINT there keeps its default
(abort): one process cannot stop alone without stalling the others.
"""

import os
import signal
import threading

from absl import logging
import jax
from jax.experimental import multihost_utils

EXIT_CODE = 75


class Preempted(Exception):
  """Training stopped on a signal after checkpointing `step`."""

  def __init__(self, step, signame):
    super().__init__(f"Stopped by {signame} after checkpointing step {step}; "
                     "run the same command again to resume.")
    self.step, self.signame = step, signame


class Guard:
  """Context manager that turns SIGTERM / SIGINT into a stop request."""

  def __init__(self, enabled=True):
    self.enabled = enabled
    self.signum = None
    self._previous = {}
    self._multiprocess = jax.process_count() > 1

  def __enter__(self):
    if (not self.enabled or self._multiprocess  # see the module docstring
        or threading.current_thread() is not threading.main_thread()):
      return self
    for s in (signal.SIGTERM, signal.SIGINT):
      self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:  # second signal: abort now
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)
      return
    self.signum = signum
    logging.warning("%s received: finishing this step, checkpointing, then "
                    "exiting (send it again to abort at once).",
                    signal.Signals(signum).name)

  @property
  def signame(self):
    return (signal.Signals(self.signum).name if self.signum is not None
            else "preemption notice")

  def should_stop(self, step):
    if not self.enabled:
      return False
    if self._multiprocess:
      try:
        return multihost_utils.reached_preemption_sync_point(step)
      except RuntimeError:  # no preemption sync manager in this runtime
        self.enabled = False
        logging.warning("No JAX preemption sync manager: a SIGTERM will "
                        "stop this multi-process run without a checkpoint.")
        return False
    return self.signum is not None
