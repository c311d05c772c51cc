"""Where the quickstart trunk's forward + backward spends its time on CPU.

  python benchmarks/profile_trunk.py [--repeats=3] [--top=15]

Traces (jax.profiler, perfetto JSON) --repeats calls of the jitted gradient
of the quickstart encoder (ResNet-18 width 8, CIFAR stem, train-mode BN) on
one view of the batch (256 × 32 px), the computation that
`benchmarks/train_step.py` times as "trunk forward + backward", and prints
the time per XLA op kind per call, the share of the convolutions' filter
gradients (ops whose output is a kernel, [Cout, kh, kw, Cin]) and of the
layout transposes that feed them, then the --top slowest ops with their
HLO output shapes.
"""

import collections
import gzip
import json
import os
import re
import sys
import tempfile

from absl import app
from absl import flags
import jax

import timing  # benchmarks/timing.py

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs"))
import quickstart  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_integer("repeats", 3, "Traced calls (after 3 untraced).")
flags.DEFINE_integer("top", 15, "Slowest ops to list.")
FLAGS = flags.FLAGS


def trunk_grad():
  """(the compiled gradient of the trunk's loss, its arguments, batch)."""
  c = quickstart.get_config()
  loss, params, x = timing.trunk_loss(c)
  grad = jax.jit(jax.grad(loss, has_aux=True)).lower(params, x).compile()
  return grad, (params, x), c.batch_size


def op_times(fn, args, repeats):
  """{XLA op name: ms per call} from a profiler trace of `repeats` calls."""
  for _ in range(3):
    jax.block_until_ready(fn(*args))
  with tempfile.TemporaryDirectory() as out:
    with jax.profiler.trace(out, create_perfetto_trace=True):
      for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    path = next(os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs
                if f.endswith(".trace.json.gz"))
    with gzip.open(path) as f:
      events = json.load(f)
  events = events["traceEvents"] if isinstance(events, dict) else events
  ms = collections.Counter()
  for e in events:
    name = e.get("name", "")
    # Python frames ("$file:line"), the dispatch and the executor's own
    # spans overlap the ops; only XLA ops are counted.
    if e.get("ph") == "X" and not name.startswith(
        ("$", "ThunkExecutor", "PjitFunction")):
      ms[name] += e.get("dur", 0) / 1e3 / repeats
  return ms


def main(_):
  grad, args, batch = trunk_grad()
  ms = op_times(grad, args, FLAGS.repeats)
  hlo = grad.as_text()  # the program just timed, after XLA's passes
  shape, dims = {}, {}
  for name in ms:
    m = re.search(r"%" + re.escape(name) + r" = (\w+\[([\d,]*)\])", hlo)
    shape[name] = m.group(1) if m else "?"
    dims[name] = [int(d) for d in m.group(2).split(",") if d] if m else []

  def is_kernel(d):  # [Cout, kh, kw, Cin]: a filter gradient
    return len(d) == 4 and d[1] == d[2] and d[1] <= 7 and d[0] != batch

  total = sum(ms.values())
  kinds = collections.Counter()
  for name, t in ms.items():
    kinds[re.sub(r"\.\d+$", "", name)] += t
  print(f"trunk forward + backward: {total:.1f} ms of XLA ops per call "
        f"({FLAGS.repeats} traced calls)")
  for kind, t in kinds.most_common(8):
    print(f"  {kind:32s} {t:8.1f} ms  {100 * t / total:5.1f}%")
  dw = sum(t for n, t in ms.items() if is_kernel(dims[n]))
  # The transposes that feed the filter gradients move the batch axis last.
  tr = sum(t for n, t in ms.items() if n.startswith("transpose")
           and len(dims[n]) == 4 and dims[n][-1] == batch)
  print(f"  filter-gradient convolutions     {dw:8.1f} ms  "
        f"{100 * dw / total:5.1f}%")
  print(f"  transposes to batch-last layout  {tr:8.1f} ms  "
        f"{100 * tr / total:5.1f}%")
  print(f"slowest {FLAGS.top} ops:")
  for name, t in ms.most_common(FLAGS.top):
    print(f"  {t:7.2f} ms  {name:28s} {shape[name]}")


if __name__ == "__main__":
  app.run(main)
