"""Every file ssljax writes goes through here: local paths or gs:// (etils.epath).

Writes are atomic for readers: locally a temporary file then a rename; on
object stores (gs://) a single object upload, which is all-or-nothing by
itself (and their "rename" is a copy plus a delete). A crash leaves the old
content or the new one, never half of it.
"""

import io

from etils import epath


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
