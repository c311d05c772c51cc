"""Watching a run: features, kNN monitor, probes, metrics files, progress.

metrics.jsonl gets one JSON object per logging step; TensorBoard event files
are written by tensorboardX (no TensorFlow); summary.json has "random_init"
(the encoder before training) and "trained", each with linear_probe_accuracy
and knn_accuracy (fractions in [0, 1]).
"""

import json
import os

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import tensorboardX
import tqdm

from ssljax import evals
from ssljax.data import augment
from ssljax.data import pipeline


def num_classes(source, key):
  """From the TFDS features when available, else from the labels."""
  info = getattr(source, "dataset_info", None)
  try:
    return int(info.features[key].num_classes)
  except (AttributeError, KeyError, TypeError):
    return int(max(source[i][key] for i in range(len(source)))) + 1


def make_represent(s):
  """Jitted (params, batch_stats, uint8 images) -> eval-mode representations,
  batch sharded over the mesh. Build once per run: each call of this makes a
  new function, which jit compiles anew."""
  cfg = s.cfg
  repl = jax.sharding.NamedSharding(s.mesh, jax.sharding.PartitionSpec())
  data = jax.sharding.NamedSharding(s.mesh, jax.sharding.PartitionSpec("data"))

  def represent(params, stats, images):
    x = augment.normalize(images.astype(jnp.float32) / 255.0, cfg.data.mean,
                          cfg.data.std).astype(s.model.dtype)
    return s.model.apply({"params": params, "batch_stats": stats}, x,
                         method="represent")

  return jax.jit(represent, in_shardings=(repl, repl, data),
                 out_shardings=data)


def extract_features(s, state, source, *, represent=None, batch_size=None,
                     label_key=None):
  """Eval-mode encoder representations of every example of `source`, once.

  Returns (features float32 [n, D], labels int [n]) on every process, in the
  source's order. Pass `represent=make_represent(s)` when calling repeatedly.
  """
  cfg = s.cfg
  label_key = label_key or cfg.data.label_key
  batch_size = batch_size or cfg.eval_batch_size
  represent = represent or make_represent(s)
  feats, labels, index = [], [], []
  for b in pipeline.eval_iterator(source, global_batch=batch_size,
                                  image_size=cfg.data.image_size,
                                  crop_fraction=cfg.data.crop_fraction,
                                  label_keys=(label_key,)):
    g = pipeline.to_global(b, s.mesh)
    f = represent(state.params, state.batch_stats, g["image"])
    out = multihost_utils.process_allgather(
        {"f": f, "y": g[label_key], "i": g["index"], "m": g["mask"]},
        tiled=True)
    feats.append(out["f"][out["m"]])
    labels.append(out["y"][out["m"]])
    index.append(out["i"][out["m"]])
  order = np.argsort(np.concatenate(index))
  return np.concatenate(feats)[order], np.concatenate(labels)[order]


class Evaluator:
  """kNN monitor + online-probe accuracy during training; + offline linear
  probe for the summary."""

  def __init__(self, cfg, s, train_src, test_src):
    self.cfg, self.s = cfg, s
    self.train_src, self.test_src = train_src, test_src
    self.represent = make_represent(s)

  def _features(self, state):
    return tuple(extract_features(self.s, state, src,
                                  represent=self.represent)
                 for src in (self.train_src, self.test_src))

  def _monitor(self, state, tr, te):
    ks = tuple(self.cfg.knn.k)
    knn = evals.knn_accuracy(tr[0], tr[1], te[0], te[1], k=ks,
                             temperature=self.cfg.knn.temperature)
    out = {f"knn_accuracy_k{k}": v for k, v in knn.items()}
    probe = state.params.get("probe")
    if probe is not None:
      logits = te[0] @ np.asarray(probe["kernel"]) + np.asarray(probe["bias"])
      out["online_probe_accuracy"] = float(np.mean(logits.argmax(-1) == te[1]))
    return out

  def monitor(self, state):
    return {f"eval/{k}": v for k, v in
            self._monitor(state, *self._features(state)).items()}

  def summary(self, state):
    tr, te = self._features(state)
    out = self._monitor(state, tr, te)
    out["knn_accuracy"] = out[f"knn_accuracy_k{self.cfg.knn.k[0]}"]
    probe = evals.linear_probe(tr[0], tr[1], te[0], te[1])
    out["linear_probe_accuracy"] = probe["test_accuracy"]
    out["linear_probe_train_accuracy"] = probe["train_accuracy"]
    out["linear_probe_l2"] = probe["l2"]
    out["step"] = int(state.step)
    return out


class Writer:
  """metrics.jsonl + TensorBoard + summary.json (process 0 only)."""

  def __init__(self, workdir, enabled=True):
    self.enabled, self.workdir, self.summary = enabled, workdir, {}
    if enabled:
      self.tb = tensorboardX.SummaryWriter(os.path.join(workdir, "tb"))
      self.jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
      old = os.path.join(workdir, "summary.json")
      if os.path.exists(old):
        with open(old) as f:
          self.summary = json.load(f)

  def scalars(self, step, metrics):
    if not self.enabled:
      return
    row = {"step": int(step)}
    row.update({k: float(v) for k, v in metrics.items() if k != "step"})
    self.jsonl.write(json.dumps(row) + "\n")
    self.jsonl.flush()
    for k, v in row.items():
      if k != "step":
        self.tb.add_scalar(k, v, step)

  def write_summary(self, path):
    if self.enabled:
      tmp = path + ".tmp"
      with open(tmp, "w") as f:
        json.dump(self.summary, f, indent=1)
      os.replace(tmp, path)

  def close(self):
    if self.enabled:
      self.tb.close()
      self.jsonl.close()


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
