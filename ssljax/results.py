"""Reading what runs and experiments wrote: the API the notebooks use.

  from ssljax import results
  cfg = results.config(WORKDIR)        # config.json as a ConfigDict
  m = results.metrics(WORKDIR)         # {"step": int [n], "loss": [n], ...}
  s = results.summary(WORKDIR)         # summary.json ({} until written)
  e = results.evals(WORKDIR)           # {step: ssljax-eval's eval_stepN.json}
  r = results.experiment(PATH)         # an experiment's results.json
  c = results.seed_curves([r0, r1, r2], "rep/label/true/ncc_test")
  test = results.represent(WORKDIR, "test", step=0)   # features + labels

WORKDIR is a run's folder (`ssljax-train --workdir`), local or gs:// (every
path goes through etils.epath). `represent` rebuilds the networks from the
workdir's config and restores only their variables (`saved_runs.load`), then
extracts features exactly as the evaluators do (`monitor.extract`): no
optimizer, loss or train state is built.

Experiment results (`experiment`):
  reverse_ssl: WORKDIR/reverse_ssl/results.json, {"levels": [label keys,
    fine to coarse], "epochs": [e per evaluated checkpoint], "results":
    [{"layer/level/labels/metric": value} per checkpoint]}.
  learning_by_reconstruction: WORKDIR/results.json, {dataset: {"pca":
    {"full": acc, "top": {p: acc}, "bottom": {p: acc}, "dims": {p: k}},
    "alignment": {setting: [alignment % for K = 1, 2, ...]}, "training":
    {run: {"curve": [{"step", "linear", "knn", "recon_loss"?}],
    "train_minutes"}}}}; parts and cells appear as the experiment finishes
    them.
"""

import json
import re

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from ssljax import checkpoint
from ssljax import evals as evals_lib
from ssljax import monitor
from ssljax import saved_runs
import ssljax.data

# Per-step timing columns of metrics.jsonl: how fast, not what was learned.
TIMING = ("seconds_per_step", "images_per_sec", "examples_per_sec_per_device",
          "tflops_per_sec_per_device", "mfu")
SUMMARY_METRICS = ("linear_probe_accuracy", "knn_accuracy",
                   "online_probe_accuracy")
# Where experiments put their results.json inside a workdir.
EXPERIMENT_DIRS = ("", "reverse_ssl")


def _path(p):
  return epath.Path(p)


def config(workdir):
  """The config the run started with (WORKDIR/config.json)."""
  if not (_path(workdir) / "config.json").exists():
    raise FileNotFoundError(f"{workdir} has no config.json: not a ssljax "
                            "workdir.")
  return checkpoint.load_config(workdir)


def metrics_rows(workdir):
  """The rows of WORKDIR/metrics.jsonl as dicts, in file order. A line that
  is not JSON (the last one cut by a crash, or being written) is skipped,
  as the trainer's own reader does."""
  path = _path(workdir) / "metrics.jsonl"
  if not path.exists():
    raise FileNotFoundError(f"{path} does not exist (no step logged yet?).")
  rows = []
  for line in path.read_text().splitlines():
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError:
      continue
    if isinstance(row, dict):
      rows.append(row)
  return rows


def metrics(workdir, rows=None):
  """metrics.jsonl as columns: {"step": int64 [n], name: float64 [n]}, one
  entry per logged step (rows of the same step are merged: the trainer
  logs the end-of-run summary as "final/..." in a row of its own); NaN
  where a step lacks the name (e.g. "eval/..." columns, logged only at
  evaluation steps)."""
  rows = metrics_rows(workdir) if rows is None else rows
  by_step = {}
  for r in rows:
    by_step.setdefault(int(r.get("step", -1)), {}).update(r)
  names = list(dict.fromkeys(k for r in by_step.values() for k in r))
  out = {"step": np.array(list(by_step), np.int64)}
  for k in names:
    if k != "step":
      out[k] = np.array([_float(r.get(k)) for r in by_step.values()],
                        np.float64)
  return out


def train_minutes(workdir):
  """Minutes the run's training steps took, over every process that trained
  it (resumes included): Σ seconds_per_step × steps since the previous
  logged row, from metrics.jsonl (evaluations and start-up excluded)."""
  total, last = 0.0, 0
  for r in metrics_rows(workdir):
    if "seconds_per_step" in r and "step" in r:
      total += float(r["seconds_per_step"]) * max(int(r["step"]) - last, 0)
      last = int(r["step"])
  return total / 60


def _float(v):
  try:
    return float(v)
  except (TypeError, ValueError):
    return np.nan


def summary(workdir):
  """WORKDIR/summary.json: {"random_init": {...}, "trained": {...}} (see
  ssljax.monitor); {} when the run has not written it."""
  path = _path(workdir) / "summary.json"
  return json.loads(path.read_text()) if path.exists() else {}


def summary_table(summ, names=SUMMARY_METRICS):
  """A Markdown table of `summ` (as from `summary`): one row per metric of
  `names` that some column has, columns random_init, trained, then any
  others; accuracies as percentages."""
  order = ("random_init", "trained")
  cols = [c for c in order if c in summ] + [c for c in summ if c not in order]
  names = [n for n in names if any(n in summ[c] for c in cols)]
  lines = ["| metric | " + " | ".join(cols) + " |",
           "|---|" + "---:|" * len(cols)]
  for n in names:
    vals = [summ[c].get(n) for c in cols]
    lines.append(f"| {n} | " + " | ".join(
        f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "-"
        for v in vals) + " |")
  steps = [summ[c].get("step") for c in cols]
  if any(s is not None for s in steps):
    lines.append("| step | " + " | ".join(
        "-" if s is None else str(s) for s in steps) + " |")
  return "\n".join(lines)


def evals(workdir):
  """{step: {"step", "evals", "results"}} of every WORKDIR/checkpoints/
  eval_step<N>.json (written by ssljax-eval), by step."""
  ckpt = _path(workdir) / "checkpoints"
  out = {}
  if ckpt.is_dir():
    for p in ckpt.iterdir():
      m = re.fullmatch(r"eval_step(\d+)\.json", p.name)
      if m:
        out[int(m.group(1))] = json.loads(p.read_text())
  return dict(sorted(out.items()))


def experiment(path):
  """An experiment's results.json: `path` is the file itself, or a folder
  holding it (WORKDIR/results.json) or an experiment's subfolder holding it
  (WORKDIR/reverse_ssl/results.json)."""
  path = _path(path)
  if path.name.endswith(".json"):
    tried = [path]
  else:
    tried = [path / d / "results.json" if d else path / "results.json"
             for d in EXPERIMENT_DIRS]
  for p in tried:
    if p.exists():
      return json.loads(p.read_text())
  raise FileNotFoundError("No experiment results at " +
                          " or ".join(map(str, tried)) + ".")


def reverse_ssl(path):
  """The reverse-engineering experiment's results (see the module doc),
  checked for its keys."""
  res = experiment(path)
  missing = {"levels", "epochs", "results"} - set(res)
  if missing or len(res["epochs"]) != len(res["results"]):
    raise ValueError(f"{path} is not a reverse_ssl results.json (needs "
                     "levels, and one results entry per epoch).")
  return res


def layers(res):
  """Layers of a reverse_ssl results dict, input to output."""
  names = {k.split("/")[0] for r in res["results"] for k in r
           if k.count("/") == 3}
  return evals_lib.layer_order(names)


def curve(res, name):
  """float64 [epochs]: metric `name` ("layer/level/labels/metric") at each
  evaluated checkpoint of a reverse_ssl results dict; NaN where missing."""
  return np.array([_float(r.get(name)) for r in res["results"]])


def seed_curves(ress, name):
  """float64 [seeds, epochs]: `curve(res, name)` for reverse_ssl results of
  several seeds of one config, ready for a mean and std over axis 0. The
  seeds must have evaluated the same epochs (same config, finished runs):
  a ValueError says which differ, rather than averaging unlike points."""
  ress = list(ress)
  if not ress:
    raise ValueError("seed_curves needs at least one results dict.")
  first = list(ress[0]["epochs"])
  for i, res in enumerate(ress[1:], 1):
    if list(res["epochs"]) != first:
      raise ValueError(f"Results {i} evaluated epochs {res['epochs']}, "
                       f"results 0 {first}: finish (or resume) the shorter "
                       "run, or compare only the common checkpoints.")
  return np.stack([curve(res, name) for res in ress])


def pca_table(pca):
  """The "pca" part of learning_by_reconstruction for one dataset as
  arrays sorted by p: {"p", "top", "bottom", "dims"} (NaN where a cell is
  not finished) and "full" (a float, NaN if missing)."""
  ps = sorted({*pca.get("top", {}), *pca.get("bottom", {}),
               *pca.get("dims", {})}, key=float)
  col = lambda side: np.array([_float(pca.get(side, {}).get(p)) for p in ps])
  return {"p": np.array([float(p) for p in ps]), "top": col("top"),
          "bottom": col("bottom"), "dims": col("dims"),
          "full": _float(pca.get("full"))}


# ----------------------------------------------------------------------------
# Data and representations of a workdir.
# ----------------------------------------------------------------------------
def source(workdir, split="test"):
  """The random-access data source the run was evaluated on: "train" (the
  config's data.train_split) or "test" (data.eval_split)."""
  d = config(workdir).data
  return ssljax.data.load_source(d.dataset, _split(d, split), d.data_dir)


def _split(data_cfg, split):
  if split not in ("train", "test"):
    raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
  return data_cfg.train_split if split == "train" else data_cfg.eval_split


def images(workdir, split, indices):
  """uint8 [len(indices), H, W, C]: images of `split` (see `source`) as
  stored in the dataset (not cropped or normalized)."""
  src = source(workdir, split)
  return np.stack([np.asarray(src[int(i)]["image"]) for i in indices])


def label_keys(src, first=()):
  """The class-label fields of a source (TFDS ClassLabel features), after
  `first`; just `first` when the source describes no features."""
  keys = list(first)
  try:
    feats = src.dataset_info.features
    keys += [k for k, f in feats.items()
             if isinstance(f, tfds.features.ClassLabel)]
  except AttributeError:
    pass
  return tuple(dict.fromkeys(keys))


def label_names(workdir, key="label"):
  """Class names of label `key` from the dataset's features, or None."""
  try:
    return list(source(workdir, "test").dataset_info.features[key].names)
  except (AttributeError, KeyError):
    return None


def represent(workdir, split="test", step=None, layers=False, keys=None):
  """Representations and labels of a split at checkpoint `step` (None: the
  newest; 0: the random initialization from the config's seed).

  split: "train", "test", or a sequence of them (then a tuple, one entry
  each, from one restore). Returns {"x": {layer: float32 [n, d]} ("rep",
  and with `layers` every pooled intermediate), "y": {label key: int [n]},
  "step": int}, rows in source order (row i is `source(workdir, split)[i]`),
  layers input to output, labels in the order of `keys`.
  keys: label keys (default: the run's evaluation levels, fine first, then
  every other class label of the dataset, e.g. coarse labels the run did
  not evaluate).
  """
  one = isinstance(split, str)
  splits = (split,) if one else tuple(split)
  bad = [s for s in splits if s not in ("train", "test")]
  if bad:
    raise ValueError(f"split must be 'train' or 'test', not {bad[0]!r}.")
  cfg, variables, ev, step = saved_runs.load(workdir, step)
  out = []
  for s in splits:
    src = ev.train_src if s == "train" else ev.test_src
    names = tuple(keys or label_keys(src, ev.label_keys))
    f = monitor.extract(ev.represent, variables, src, mesh=ev.mesh,
                        data_cfg=cfg.data, batch_size=cfg.eval_batch_size,
                        label_keys=names, layers=layers)
    out.append({"x": {k: f["x"][k] for k in evals_lib.layer_order(f["x"])},
                "y": {k: f["y"][k] for k in names}, "step": int(step)})
  return out[0] if one else tuple(out)


def nearest(query, keys, k=8):
  """int [q, k]: for each row of `query`, the rows of `keys` with the
  largest cosine similarity, most similar first."""
  norm = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True),
                                  1e-12)
  sim = norm(np.asarray(query, np.float32)) @ norm(
      np.asarray(keys, np.float32)).T
  top = np.argpartition(-sim, min(k, sim.shape[1] - 1), axis=1)[:, :k]
  order = np.take_along_axis(sim, top, 1).argsort(1)[:, ::-1]
  return np.take_along_axis(top, order, 1)
