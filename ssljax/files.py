"""Every file ssljax writes goes through here: local paths or gs:// (etils.epath).

Writes are atomic for readers: locally a temporary file then a rename; on
object stores (gs://) a single object upload, which is all-or-nothing by
itself (and their "rename" is a copy plus a delete). A crash leaves the old
content or the new one, never half of it.
"""

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
  write(tmp)
  tmp.replace(path)


def save_figure(fig, path, dpi=110):
  """A matplotlib figure as PNG at `path` (local or gs://); returns str."""
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=dpi)
  write_atomic(path, buf.getvalue())
  return str(path)
