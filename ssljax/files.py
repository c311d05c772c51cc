"""Every file ssljax writes goes through here: local paths or gs:// (etils.epath).

Writes are atomic for readers: locally a temporary file then a rename; on
object stores (gs://) a single object upload, which is all-or-nothing by
itself (and their "rename" is a copy plus a delete). A crash leaves the old
content or the new one, never half of it.
"""

import contextlib
import errno
import io
import json

from etils import epath


class DiskFull(OSError):
  """A write failed for lack of space; the message says where and what to do."""


class DamagedFile(ValueError):
  """A file ssljax wrote does not hold what it should (cut, edited, rot)."""


def disk_full(e):
  """True if `e` or an exception it was raised from is ENOSPC (orbax and
  tensorstore wrap it in many types, sometimes only as text)."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if getattr(e, "errno", None) == errno.ENOSPC or (
        "No space left on device" in str(e)):
      return True
    e = e.__cause__ or e.__context__
  return False


def read_json_object(path, what):
  """The JSON object (dict) in `path`, or DamagedFile saying which file, why
  and what to do; FileNotFoundError passes through."""
  path = epath.Path(path)
  text = path.read_text()
  try:
    value = json.loads(text)
  except ValueError as e:
    raise DamagedFile(f"{path} is damaged (not JSON: {e}); {what}") from None
  if not isinstance(value, dict):
    raise DamagedFile(f"{path} is damaged (holds a JSON "
                      f"{type(value).__name__}, not an object); {what}")
  return value


def write_atomic(path, data):
  """Writes `data` (str or bytes) to `path`, creating its parent folder."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  write = lambda p: (p.write_bytes(data) if isinstance(data, bytes)
                     else p.write_text(data))
  if "://" in str(path):
    write(path)
    return
  tmp = path.parent / (path.name + ".tmp")
  try:
    write(tmp)
    tmp.replace(path)
  except BaseException:
    if tmp.exists():  # nothing half-written left behind
      tmp.unlink()
    raise


class OutputRefused(ValueError):
  """A command's output path would replace something it must not."""


# What a workdir holds (ssljax.train, ssljax.workdir, ssljax-eval): a
# command's output never replaces any of it.
WORKDIR_OWN = ("config.json", "metrics.jsonl", "summary.json", "lock.json",
               "imported.json",
               "checkpoints", "checkpoints_damaged", "tb")


def _owning_workdir(path):
  """The workdir (a folder with config.json and checkpoints/) whose own
  files (WORKDIR_OWN) include `path`, or None."""
  parents = [path.parent, *path.parent.parents][:4]
  for i, folder in enumerate(parents):
    first = (path if i == 0 else parents[i - 1]).name
    if (first in WORKDIR_OWN and (folder / "config.json").exists()
        and (folder / "checkpoints").is_dir()):
      return folder
  return None


def check_output(path, *, overwrite=False, flag="--out"):
  """OutputRefused if `path` is a folder, an existing file (unless
  `overwrite`) or a file a workdir owns (even with `overwrite`)."""
  path = epath.Path(path)
  if path.is_dir():
    raise OutputRefused(f"{flag}={path} is a folder: give a file name, "
                        f"e.g. {flag}={path / 'encoder.safetensors'}.")
  owner = _owning_workdir(path)
  if owner is not None:
    raise OutputRefused(f"{flag}={path} is one of the workdir {owner}'s own "
                        "files: write the output elsewhere.")
  if path.exists() and not overwrite:
    raise OutputRefused(f"{flag}={path} exists: pass --overwrite to "
                        "replace it, or choose another path.")


def write_output(path, data, *, overwrite=False, flag="--out"):
  """write_atomic for a command's output file, after check_output (a
  command calls that first too, before its work)."""
  check_output(path, overwrite=overwrite, flag=flag)
  write_atomic(path, data)


def save_figure(fig, path, dpi=110):
  """A matplotlib figure as PNG at `path` (local or gs://); returns str."""
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=dpi)
  write_atomic(path, buf.getvalue())
  return str(path)


def merge(old, new):
  """`old` with `new` on top, dicts merged key by key at every depth."""
  out = dict(old)
  for k, v in new.items():
    out[k] = merge(out[k], v) if (isinstance(v, dict) and isinstance(
        out.get(k), dict)) else v
  return out


@contextlib.contextmanager
def _locked(path):
  """An exclusive lock on PATH.lock (local files; object stores: none)."""
  if "://" in str(path):
    yield
    return
  import fcntl  # pylint: disable=g-import-not-at-top  (POSIX only)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(f"{path}.lock", "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _update_in_place(target, source):
  """`target` made equal to `source` (a superset), its nested dicts kept
  as objects, so references a caller holds into it stay live."""
  for k, v in source.items():
    if isinstance(v, dict) and isinstance(target.get(k), dict):
      _update_in_place(target[k], v)
    else:
      target[k] = v


def merge_json(path, results, what="results"):
  """Writes `results` merged into the JSON object at `path` (files.merge:
  entries another process wrote since stay), under a lock, atomically, and
  updates `results` in place to the merged object (its nested dicts stay
  the same objects). Two experiment invocations sharing a workdir
  (different --methods) each keep the other's cells."""
  path = epath.Path(path)
  with _locked(path):
    old = read_json_object(path, f"move it away to start {what} afresh"
                           ) if path.exists() else {}
    out = merge(old, results)
    write_atomic(path, json.dumps(out, indent=1))
  _update_in_place(results, out)
  return results
