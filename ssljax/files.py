"""Every file ssljax writes goes through here: local paths or gs:// (etils.epath).

Writes are atomic for readers: a temporary object then a rename, so a
crash leaves the old content or the new one, never half of it.
"""

import io

from etils import epath


def write_atomic(path, data):
  """Writes `data` (str or bytes) to `path`, creating its parent folder."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.parent / (path.name + ".tmp")
  if isinstance(data, bytes):
    tmp.write_bytes(data)
  else:
    tmp.write_text(data)
  tmp.replace(path)  # object stores: a whole-object copy, then a delete


def save_figure(fig, path, dpi=110):
  """A matplotlib figure as PNG at `path` (local or gs://); returns str."""
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=dpi)
  write_atomic(path, buf.getvalue())
  return str(path)
