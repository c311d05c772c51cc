"""The console scripts: SIGTERM / SIGINT handling first, then the imports.

`ssljax-train`, `ssljax-eval`, `ssljax-export` and `ssljax-import` start
here, so that a preemption notice during the seconds of importing JAX,
Flax and orbax is a stop request (exit 75, nothing left behind) rather
than Python's default death (exit 143).
"""

from ssljax import preemption


def train():
  preemption.install()
  from ssljax import main  # pylint: disable=g-import-not-at-top
  main.run()


def evaluate():
  preemption.install()
  from ssljax import eval_main  # pylint: disable=g-import-not-at-top
  eval_main.run()


def export():
  preemption.install()
  from ssljax import export_main  # pylint: disable=g-import-not-at-top
  export_main.run()


def import_():
  preemption.install()
  from ssljax import import_main  # pylint: disable=g-import-not-at-top
  import_main.run()
