"""One writer per workdir: an owner file with a heartbeat, local or gs://.

`WORKDIR/lock.json` holds {"host", "pid", "token", "started", "heartbeat"}
(UNIX seconds). A run refuses a workdir whose lock is live, naming the
owner. A lock is stale, and is taken over with a warning, when its
heartbeat is older than `stale_after` seconds or when its owner was on this
host and that process is gone; `force=True` (`--force_lock`) takes over any
lock. A thread refreshes the heartbeat every `heartbeat_every` seconds.

Object stores have no atomic create-if-absent through epath, so two runs
starting within the same second could both write the file; each re-reads it
after a short pause and only the one whose token is there proceeds.
"""

import json
import os
import socket
import threading
import time
import uuid

from absl import logging
from etils import epath

NAME = "lock.json"


class WorkdirLocked(RuntimeError):
  """Another live run owns the workdir."""


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _read(path):
  try:
    return json.loads(path.read_text())
  except (FileNotFoundError, json.JSONDecodeError, ValueError):
    return None


class Lock:
  """Context manager: `with Lock(workdir): ...` (no-op when disabled)."""

  def __init__(self, workdir, *, force=False, stale_after=1800.0,
               heartbeat_every=60.0, enabled=True, settle=0.2):
    self.path = epath.Path(workdir) / NAME
    self.force, self.stale_after = force, stale_after
    self.heartbeat_every, self.enabled, self.settle = (heartbeat_every,
                                                       enabled, settle)
    self.token = uuid.uuid4().hex
    self._stop = threading.Event()
    self._thread = None

  def _record(self, started):
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "token": self.token, "started": started,
            "heartbeat": time.time()}

  def _stale_reason(self, owner):
    age = time.time() - owner.get("heartbeat", 0)
    if age > self.stale_after:
      return f"its heartbeat is {age:.0f} s old"
    if owner.get("host") == socket.gethostname() and not _alive(
        int(owner.get("pid", -1))):
      return f"process {owner.get('pid')} on this host is gone"
    return None

  def acquire(self):
    if not self.enabled:
      return self
    owner = _read(self.path)
    if owner is not None and owner.get("token") != self.token:
      reason = self._stale_reason(owner)
      if reason is None and not self.force:
        raise WorkdirLocked(
            f"{self.path.parent} is in use by pid {owner.get('pid')} on "
            f"{owner.get('host')} (heartbeat "
            f"{time.time() - owner.get('heartbeat', 0):.0f} s ago). Use "
            "another --workdir, wait for that run to end, or pass "
            "--force_lock if it is dead.")
      logging.warning("Taking over %s from pid %s on %s: %s.", self.path,
                      owner.get("pid"), owner.get("host"),
                      reason or "--force_lock")
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self.path.write_text(json.dumps(self._record(time.time())))
    time.sleep(self.settle)
    now = _read(self.path)
    if not now or now.get("token") != self.token:
      raise WorkdirLocked(f"{self.path.parent} was claimed at the same time "
                          f"by pid {(now or {}).get('pid')} on "
                          f"{(now or {}).get('host')}; use another --workdir.")
    self._started = now["started"]
    self._thread = threading.Thread(target=self._beat, daemon=True)
    self._thread.start()
    return self

  def _beat(self):
    while not self._stop.wait(self.heartbeat_every):
      owner = _read(self.path)
      if not owner or owner.get("token") != self.token:
        logging.warning("%s was taken over by another run.", self.path)
        return
      self.path.write_text(json.dumps(self._record(self._started)))

  def release(self):
    if not self.enabled or self._thread is None:
      return
    self._stop.set()
    self._thread.join()
    owner = _read(self.path)
    if owner and owner.get("token") == self.token:
      self.path.unlink()

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
