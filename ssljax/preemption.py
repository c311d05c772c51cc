"""Stop cleanly on preemption: SIGTERM / SIGINT -> checkpoint -> exit 75.

`install()` runs first thing in the command-line entry points, before the
heavy imports, so a signal at any moment is a stop request, never Python's
default death (exit 143 with the workdir's lock left behind). Until the
training loop runs, `stop_if_requested()` is asked between the start-up
phases (imports, validation, lock, data, restore) and raises `Preempted`
with nothing to save; the loop asks `guard.should_stop(step)` after every
step and, when it says yes, writes a synchronous checkpoint of that step,
flushes the metrics and raises `Preempted`; the final evaluation asks
between batches. The CLI prints one line and exits with `EXIT_CODE` (75,
EX_TEMPFAIL: "temporary failure, run again"), which the launchers treat as
"relaunch and resume". A second signal aborts at once. A signal after the
run has finished is ignored (the run exits 0).

Single process: Python signal handlers for SIGTERM (Cloud TPU / GCE
preemption, SLURM, `kill`) and SIGINT (Ctrl-C) set a flag.
Multi-process: every process must stop at the same step, so SIGTERM is left
to JAX's preemption sync manager (started by `jax.distributed.initialize`,
which also receives Cloud TPU maintenance / preemption notices), and the
loop asks `multihost_utils.reached_preemption_sync_point(step)`, which says
yes on every process at the same step. SIGINT there keeps its default
(abort): one process cannot stop alone without stalling the others.
"""

import logging
import os
import signal
import threading

EXIT_CODE = 75
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received = []  # signal numbers, in order (module state: one per process)
_installed = []  # [True] once install() ran (a CLI process)


class Preempted(Exception):
  """Training stopped on a signal; `step` is the checkpointed step (None:
  stopped before there was anything to save)."""

  def __init__(self, step, signame, during=None, message=None):
    if message is not None:
      super().__init__(message)
      self.step, self.signame = step, signame
      return
    if step is None:
      what = (f"Stopped by {signame} {during or 'during start-up'}, before "
              "the first checkpoint: nothing to save yet")
    elif during:
      what = (f"Stopped by {signame} {during} (training is checkpointed at "
              f"step {step}; the next run redoes only what was stopped)")
    else:
      what = f"Stopped by {signame} after checkpointing step {step}"
    super().__init__(what + "; run the same command again to resume.")
    self.step, self.signame = step, signame


def _handle(signum, frame):
  del frame
  if _received:  # second signal: abort now
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return
  _received.append(signum)
  # absl's logging handler may not be set up yet this early.
  logging.getLogger("absl").warning(
      "%s received: stopping at the next safe point (training checkpoints "
      "what it reached, if anything; eval, export and import write "
      "nothing); send it again to abort at once.",
      signal.Signals(signum).name)


def install():
  """SIGTERM / SIGINT become stop requests (main thread only; idempotent)."""
  if threading.current_thread() is not threading.main_thread():
    return
  for s in _SIGNALS:
    if signal.getsignal(s) is not _handle:
      signal.signal(s, _handle)
  _installed[:] = [True]


def begin_run():
  """Called as a run starts: in a library process (no `install()`), forgets
  the stop request of an earlier run in the same process."""
  if not _installed:
    _received.clear()


def requested():
  return bool(_received)


def signame():
  return (signal.Signals(_received[0]).name if _received
          else "preemption notice")


def stop_if_requested(step=None, during=None):
  """Raises Preempted if a signal has arrived (step: what is checkpointed)."""
  if _received:
    raise Preempted(step, signame(), during)


def command_guard(command):
  """(Guard, check) for a command that is no training run (ssljax-eval,
  -export, -import): inside the Guard a signal is a stop request, and
  `check(during)` raises Preempted saying that `command` wrote nothing; the
  command calls it between its parts and before it writes."""
  begin_run()

  def check(during):
    if _received:
      raise Preempted(None, signame(), message=(
          f"Stopped by {signame()} {during}: {command} wrote nothing; run "
          "the same command again."))
  check("during start-up")
  return Guard(), check


def _multiprocess():
  import jax  # pylint: disable=g-import-not-at-top  (kept out of install())
  return jax.process_count() > 1


class Guard:
  """Context manager around training: signals are stop requests inside it.

  Keeps the handlers `install()` set (or sets them, for library callers),
  and restores the previous ones on exit unless `install()` had run.
  """

  def __init__(self, enabled=True):
    self.enabled = enabled
    self._previous = {}
    self._multiprocess = _multiprocess()

  def __enter__(self):
    if (not self.enabled or self._multiprocess  # see the module docstring
        or threading.current_thread() is not threading.main_thread()):
      return self
    for s in _SIGNALS:
      previous = signal.signal(s, _handle)
      if previous is not _handle:
        self._previous[s] = previous
    return self

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous = {}

  @property
  def signum(self):
    return _received[0] if _received else None

  @property
  def signame(self):
    return signame()

  def should_stop(self, step):
    if not self.enabled:
      return False
    if self._multiprocess:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      try:
        return multihost_utils.reached_preemption_sync_point(step)
      except RuntimeError:  # no preemption sync manager in this runtime
        self.enabled = False
        logging.getLogger("absl").warning(
            "No JAX preemption sync manager: a SIGTERM will stop this "
            "multi-process run without a checkpoint.")
        return False
    return bool(_received)

  def stop_if_requested(self, step=None, during=None):
    if self.enabled and not self._multiprocess:
      stop_if_requested(step, during)
