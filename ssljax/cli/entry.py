"""The console scripts' entry points: SIGTERM / SIGINT handling first.

`ssljax-train`, `ssljax-eval`, `ssljax-export` and `ssljax-import` start
here, so that a preemption notice during the seconds of importing JAX,
Flax and orbax is a stop request (exit 75, nothing left behind) rather
than Python's default death (exit 143): each function installs the
handler, then imports its command (inside the function for that reason).
"""

from ssljax import preemption


def train():
  preemption.install()
  from ssljax.cli import train as command  # pylint: disable=g-import-not-at-top
  command.run()


def evaluate():
  preemption.install()
  from ssljax.cli import eval as command  # pylint: disable=g-import-not-at-top
  command.run()


def export():
  preemption.install()
  from ssljax.cli import export as command  # pylint: disable=g-import-not-at-top
  command.run()


def import_():
  preemption.install()
  from ssljax.cli import import_ as command  # pylint: disable=g-import-not-at-top
  command.run()
