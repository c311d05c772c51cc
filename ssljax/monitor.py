"""Watching a run: features, kNN monitor, probes, metrics files, progress.

metrics.jsonl gets one JSON object per logging step; TensorBoard event files
are written by tensorboardX (no TensorFlow); summary.json has "random_init"
(the encoder before training) and "trained", each with linear_probe_accuracy
and knn_accuracy (fractions in [0, 1]).
"""

import functools
import json
import threading
import time

from absl import logging

from etils import epath
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import tensorboardX
import tqdm

from ssljax import evals
from ssljax import files
from ssljax import ops
from ssljax.data import augment
from ssljax.data import pipeline


def num_classes(source, key):
  """From the TFDS features when available, else from the labels."""
  info = getattr(source, "dataset_info", None)
  try:
    return int(info.features[key].num_classes)
  except (AttributeError, KeyError, TypeError):
    return int(max(source[i][key] for i in range(len(source)))) + 1


def eval_config(cfg):
  """cfg.eval, with defaults for workdirs written before it existed."""
  e = cfg.get("eval") or {}
  return {"periodic": e.get("periodic", "knn"),
          "cli": e.get("cli", "linear,knn,ncc,cdnv"),
          "coarse_label_keys": tuple(e.get("coarse_label_keys", ())),
          "random_seed": e.get("random_seed", 0)}


def make_represent(net, data_cfg, mesh, dtype=jnp.float32):
  """The feature function evaluators use: represent(variables, uint8 images,
  layers=False) -> eval-mode features {"rep": .., and with `layers` every
  pooled intermediate}, via `net.represent`, batch sharded over `mesh`.
  Build once per run: each `layers` value compiles once."""
  data = jax.sharding.NamedSharding(mesh, ops.batch_spec(mesh))
  compiled = {}

  def apply(variables, images, layers):
    x = augment.normalize(images.astype(jnp.float32) / 255.0, data_cfg.mean,
                          data_cfg.std).astype(dtype)
    return net.apply(variables, x, layers, method="represent")

  def represent(variables, images, layers=False):
    if layers not in compiled:
      compiled[layers] = jax.jit(
          functools.partial(apply, layers=layers),
          # variables as they are: replicated, or split by FSDP
          in_shardings=(None, data), out_shardings=data)
    return compiled[layers](variables, images)

  return represent


def extract(represent, variables, source, *, mesh, data_cfg, batch_size,
            label_keys, layers=False, interrupt=None):
  """Features of every example of `source`, exactly once, in source order.

  The eval pipeline pads the last batch (mask=False rows are dropped);
  batches are sharded over the mesh and gathered from every process.
  Returns {"x": {layer: float32 [n, w]}, "y": {label_key: int [n]}}, the
  same on every process. `interrupt()`, if given, is called before each
  batch (it raises to stop, e.g. `preemption.stop_if_requested`).
  """
  xs, ys, index = [], [], []
  for b in pipeline.eval_iterator(source, global_batch=batch_size,
                                  image_size=data_cfg.image_size,
                                  crop_fraction=data_cfg.crop_fraction,
                                  label_keys=tuple(label_keys)):
    if interrupt is not None:
      interrupt()
    g = pipeline.to_global(b, mesh)
    f = represent(variables, g["image"], layers)
    out = multihost_utils.process_allgather(
        {"f": f, "y": {k: g[k] for k in label_keys}, "i": g["index"],
         "m": g["mask"]}, tiled=True)
    m = out["m"]
    xs.append({k: v[m] for k, v in out["f"].items()})
    ys.append({k: v[m] for k, v in out["y"].items()})
    index.append(out["i"][m])
  order = np.argsort(np.concatenate(index))
  cat = lambda parts: {k: np.concatenate([p[k] for p in parts])[order]
                       for k in parts[0]}
  return {"x": cat(xs), "y": cat(ys)}


class Evaluator:
  """Evaluations of a model's variables on the train and test splits.

  Reaches the model only through `represent` (`make_represent`): no loss,
  optimizer or train state. run(variables, names): any subset of
  ssljax.evals.EVALS (see evals/suite.py); monitor(variables): the periodic
  subset cfg.eval.periodic + online probe, keyed "eval/..."; summary(
  variables, step): kNN + offline linear probe, the summary.json entries.
  The online probe's accuracy is reported when variables["params"] holds
  "probe".
  """

  def __init__(self, cfg, represent, mesh, train_src, test_src):
    self.cfg, self.represent, self.mesh = cfg, represent, mesh
    self.train_src, self.test_src = train_src, test_src
    self.ecfg = eval_config(cfg)
    self.levels = (cfg.data.label_key,) + self.ecfg["coarse_label_keys"]
    # Classes held out of pretraining (data.holdout_*), for "unseen".
    self.holdout = (cfg.data.get("holdout_key", "label"),
                    tuple(cfg.data.get("holdout_classes", ())))
    self.label_keys = tuple(dict.fromkeys(self.levels + self.holdout[:1]))

  def features(self, variables, layers=False, interrupt=None):
    return tuple(extract(self.represent, variables, src, mesh=self.mesh,
                         data_cfg=self.cfg.data,
                         batch_size=self.cfg.eval_batch_size,
                         label_keys=self.label_keys, layers=layers,
                         interrupt=interrupt)
                 for src in (self.train_src, self.test_src))

  def run(self, variables, names, features=None, interrupt=None):
    names = evals.parse(names)
    tr, te = features or self.features(variables, layers="layers" in names,
                                       interrupt=interrupt)
    if interrupt is not None:
      interrupt()
    out = dict(evals.run(names, tr, te, levels=self.levels,
                         knn_k=tuple(self.cfg.knn.k),
                         knn_temperature=self.cfg.knn.temperature,
                         seed=self.ecfg["random_seed"],
                         holdout=self.holdout))
    probe = variables["params"].get("probe")
    if probe is not None:
      x, y = te["x"]["rep"], te["y"][self.levels[0]]
      logits = x @ np.asarray(probe["kernel"]) + np.asarray(probe["bias"])
      out["online_probe_accuracy"] = float(np.mean(logits.argmax(-1) == y))
    return out

  def monitor(self, variables):
    return {f"eval/{k}": v for k, v in
            self.run(variables, self.ecfg["periodic"]).items()}

  def summary(self, variables, step, interrupt=None):
    tr, te = self.features(variables, interrupt=interrupt)
    out = self.run(variables, "knn", (tr, te))
    lv = self.levels[0]
    for k in self.cfg.knn.k:
      out[f"knn_accuracy_k{k}"] = out.pop(f"rep/{lv}/true/knn_k{k}")
    out["knn_accuracy"] = out[f"knn_accuracy_k{self.cfg.knn.k[0]}"]
    probe = evals.linear_probe(tr["x"]["rep"], tr["y"][lv], te["x"]["rep"],
                               te["y"][lv])
    out["linear_probe_accuracy"] = probe["test_accuracy"]
    out["linear_probe_train_accuracy"] = probe["train_accuracy"]
    out["linear_probe_l2"] = probe["l2"]
    out["step"] = int(step)
    return out


_thread_errors = {}  # thread ident -> the exception that ended it


def _record_thread_error(args, _previous=threading.excepthook):
  _thread_errors[args.thread.ident] = args.exc_value
  if files.disk_full(args.exc_value):  # the CLI reports it in one line
    logging.warning("Thread %s stopped: no space left on device.",
                    args.thread.name)
    return
  _previous(args)


threading.excepthook = _record_thread_error


_TB_QUEUE = 1 << 20


class Writer:
  """metrics.jsonl + TensorBoard + summary.json (process 0 only), local or
  gs:// (through etils.epath).

  `resume_step`: the step the run restarts from (0 for a fresh run). Rows
  of metrics.jsonl past it (written between the last checkpoint and an
  interruption) are dropped, so after a resume the file holds each step
  once. A line that is not a JSON object (cut by a crash, edited) is moved
  to metrics.jsonl.garbled with a warning naming its line number. Local
  files are appended to; object stores cannot append, so there the whole
  file is rewritten at most every `remote_flush_seconds` and at close.

  TensorBoard events go through tensorboardX's writer thread; if that thread
  died (e.g. its file hit a full disk), the next write raises OSError with
  its error instead of blocking forever on the thread's full queue.
  """

  def __init__(self, workdir, enabled=True, resume_step=0,
               remote_flush_seconds=30.0):
    self.enabled, self.summary = enabled, {}
    if not enabled:
      return
    self.workdir = epath.Path(workdir)
    self.remote = "://" in str(workdir)
    self.flush_every, self._flushed = remote_flush_seconds, 0.0
    self.path = self.workdir / "metrics.jsonl"
    self.rows = []
    garbled = []
    if self.path.exists():
      for n, line in enumerate(self.path.read_text().splitlines(), 1):
        try:
          row = json.loads(line)
          step = int(row.get("step", 0))
        except (ValueError, TypeError, AttributeError):
          garbled.append((n, line))
          continue
        if step <= resume_step:
          self.rows.append(line)
    if garbled:
      aside = self.workdir / "metrics.jsonl.garbled"
      old = aside.read_text() if aside.exists() else ""
      files.write_atomic(aside, old + "".join(
          f"{self.path}:{n}: {line}\n" for n, line in garbled))
      logging.warning("%s: %d line(s) not a JSON object (line %s); moved to "
                      "%s.", self.path, len(garbled),
                      ", ".join(str(n) for n, _ in garbled[:5]), aside)
    files.write_atomic(self.path, "".join(r + "\n" for r in self.rows))
    self.jsonl = None if self.remote else open(self.path, "a")
    # A queue far longer than the events between two checks of its thread:
    # with tensorboardX's default of 10, a thread that dies mid-step (full
    # disk) leaves the step's remaining add_scalar calls blocked forever.
    self.tb = tensorboardX.SummaryWriter(str(self.workdir / "tb"),
                                         max_queue=_TB_QUEUE)
    old = self.workdir / "summary.json"
    if old.exists():
      self.summary = files.read_json_object(
          old, "move it away: the next run writes it anew (its random_init "
          "entry only if the run starts from step 0).")

  def _tb_worker(self):
    return getattr(getattr(self.tb.file_writer, "event_writer", None),
                   "_worker", None)

  def _check_tb(self):
    worker = self._tb_worker()
    if worker is not None and not worker.is_alive():
      e = _thread_errors.get(worker.ident)
      msg = f"the TensorBoard writer of {self.workdir / 'tb'} stopped: {e!r}"
      errno = getattr(e, "errno", None)
      raise (OSError(errno, msg) if errno else OSError(msg)) from e

  def scalars(self, step, metrics):
    if not self.enabled:
      return
    row = {"step": int(step)}
    row.update({k: float(v) for k, v in metrics.items() if k != "step"})
    line = json.dumps(row)
    if self.jsonl:
      self.jsonl.write(line + "\n")
      self.jsonl.flush()
    else:
      self.rows.append(line)
      self._flush_remote()
    self._check_tb()
    for k, v in row.items():
      if k != "step":
        self.tb.add_scalar(k, v, step)

  def _flush_remote(self, force=False):
    now = time.monotonic()
    if force or now - self._flushed >= self.flush_every:
      files.write_atomic(self.path, "".join(r + "\n" for r in self.rows))
      self._flushed = now

  def flush(self):
    if self.enabled:
      if self.jsonl is None:
        self._flush_remote(force=True)
      self._check_tb()
      self.tb.flush()

  def write_summary(self, path=None):
    if self.enabled:
      files.write_atomic(path or self.workdir / "summary.json",
                              json.dumps(self.summary, indent=1))

  def close(self):
    """Flushes and closes; never blocks on a dead TensorBoard thread."""
    if not self.enabled:
      return
    try:
      if self.jsonl is None:
        self._flush_remote(force=True)
    finally:
      if self.jsonl:
        self.jsonl.close()
      worker = self._tb_worker()
      if worker is None or worker.is_alive():
        self.tb.close()
      else:
        self._abandon_tb()

  def _abandon_tb(self):
    """Marks tensorboardX's writer closed without stopping its dead thread:
    its atexit hook would otherwise put a stop signal on the full queue and
    hang the process at exit, after the error was reported."""
    ev = self.tb.file_writer.event_writer
    ev._closed = True  # pylint: disable=protected-access
    try:
      ev._ev_writer.close()  # pylint: disable=protected-access
    except OSError:  # the disk that killed the thread may still be full
      pass


class Progress:
  """step/total, images/sec and ETA on one line."""

  def __init__(self, total, initial, enabled=True):
    self.bar = tqdm.tqdm(total=total, initial=initial, disable=not enabled,
                         unit="step", dynamic_ncols=True)
    self.last = initial

  def update(self, step, metrics):
    self.bar.update(step - self.last)
    self.last = step
    self.bar.set_postfix(loss=f"{metrics['loss']:.4g}",
                         img_s=f"{metrics['images_per_sec']:.0f}")

  def close(self):
    self.bar.close()


def print_summary(summary):
  keys = ["linear_probe_accuracy", "knn_accuracy", "online_probe_accuracy"]
  cols = [c for c in ("random_init", "trained") if c in summary]
  print(f"\n{'':<24}" + "".join(f"{c:>14}" for c in cols))
  for k in keys:
    vals = [summary[c].get(k) for c in cols]
    print(f"{k:<24}" + "".join(
        f"{v:>14.4f}" if isinstance(v, float) else f"{'-':>14}"
        for v in vals))
