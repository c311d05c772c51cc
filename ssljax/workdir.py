"""One writer per workdir: an owner file with a heartbeat, local or gs://.

`WORKDIR/lock.json` holds {"host", "pid", "token", "started", "heartbeat"}
(UNIX seconds). A run refuses a workdir whose lock is live, naming the
owner. A lock is stale, and is taken over with a warning, when its
heartbeat is older than `stale_after` seconds or when its owner was on this
host and that process is gone; `force=True` (`--force_lock`) takes over any
lock. A thread refreshes the heartbeat every `heartbeat_every` seconds.

A local claim is atomic: the record is written to a private file that is
then hard-linked to lock.json, which fails if lock.json exists, so of two
runs starting together exactly one wins and the other is refused naming
it. Object stores have no atomic create-if-absent through epath: there each
run writes the file, re-reads it after a short pause, and only the one whose
token is there proceeds. A lock.json that is not a lock record (cut,
edited) is taken over with a warning, like a stale one. A run whose lock
was taken over stops at its next step (`Lock.check`), writing nothing more.
"""

import errno
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


class WorkdirUnusable(OSError):
  """The workdir is not a folder this process can write."""


def check_not_a_file(workdir):
  """Refuses a workdir that is a file (creates nothing)."""
  path = epath.Path(workdir)
  if path.exists() and not path.is_dir():
    raise WorkdirUnusable(f"--workdir {workdir} is a file, not a folder; "
                          "pass a folder path (it is created if missing).")


def check_usable(workdir):
  """Refuses a workdir that is a file or cannot be created / written."""
  path = epath.Path(workdir)
  check_not_a_file(workdir)
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise WorkdirUnusable(f"Cannot create --workdir {workdir}: "
                          f"{e.strerror or e}; use a folder you can write."
                          ) from None
  if "://" not in str(path) and not os.access(path, os.W_OK | os.X_OK):
    raise WorkdirUnusable(f"--workdir {workdir} is not writable by this user;"
                          " use a folder you can write, or fix its "
                          "permissions.")


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


_DAMAGED = {"damaged": True}


def _read(path):
  """The lock record; None if there is none; _DAMAGED if it is not one."""
  try:
    owner = json.loads(path.read_text())
  except FileNotFoundError:
    return None
  except (ValueError, UnicodeDecodeError):
    return _DAMAGED
  if not isinstance(owner, dict) or "token" not in owner:
    return _DAMAGED
  return owner


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
    self.taken_by = None  # the record of the run that took the lock over

  def _record(self, started):
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "token": self.token, "started": started,
            "heartbeat": time.time()}

  def _stale_reason(self, owner):
    if owner is _DAMAGED:
      return "it is not a lock record (cut or edited)"
    try:
      age = time.time() - float(owner.get("heartbeat", 0))
      pid = int(owner.get("pid", -1))
    except (TypeError, ValueError):
      return "its pid or heartbeat is not a number"
    if age > self.stale_after:
      return f"its heartbeat is {age:.0f} s old"
    if owner.get("host") == socket.gethostname() and not _alive(pid):
      return f"process {pid} on this host is gone"
    return None

  def _claim(self, replace):
    """Writes our record; locally only if lock.json is absent (or, with
    `replace`, over the stale one). Returns the record now in lock.json."""
    record = json.dumps(self._record(time.time()))
    if "://" in str(self.path):
      self.path.write_text(record)
      time.sleep(self.settle)
      return _read(self.path)
    mine = self.path.parent / f".{NAME}.{self.token}"
    mine.write_text(record)
    try:
      if replace:  # a stale lock: a racer may replace it too, so settle
        os.replace(mine, self.path)
        time.sleep(self.settle)
      else:
        try:
          os.link(mine, self.path)
        except FileExistsError:
          pass
    finally:
      if mine.exists():
        mine.unlink()
    return _read(self.path)

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
    try:
      self.path.parent.mkdir(parents=True, exist_ok=True)
      now = self._claim(replace=owner is not None)
    except OSError as e:
      if e.errno == errno.ENOSPC:
        raise
      raise WorkdirUnusable(f"Cannot write {self.path}: {e.strerror or e}; "
                            "use a --workdir this user can write.") from None
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
        self.taken_by = owner or {}
        logging.warning("%s was taken over by another run (pid %s on %s); "
                        "this run stops at its next step.", self.path,
                        self.taken_by.get("pid"), self.taken_by.get("host"))
        return
      try:
        self.path.write_text(json.dumps(self._record(self._started)))
      except OSError as e:  # e.g. a full disk: the training loop reports it
        logging.warning("Cannot refresh %s: %s.", self.path, e)

  def check(self, step):
    """Raises WorkdirLocked if another run took the lock over."""
    if self.taken_by is not None:
      raise WorkdirLocked(
          f"{self.path.parent} was taken over by pid "
          f"{self.taken_by.get('pid')} on {self.taken_by.get('host')} "
          f"(--force_lock or a stale heartbeat); this run stopped after step "
          f"{step} and wrote nothing more. Let that run finish, or use "
          "another --workdir.")

  def release(self):
    if not self.enabled or self._thread is None:
      return
    self._stop.set()
    self._thread.join()
    owner = _read(self.path)
    if owner and owner.get("token") == self.token:
      try:
        self.path.unlink()
      except OSError as e:
        logging.warning("Cannot remove %s: %s.", self.path, e)

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
