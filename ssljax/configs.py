"""Defaults shared by every config; configs override what they change.

Config files import this from the installed package (`from ssljax import
configs`), so a config copied anywhere on disk runs unchanged:

  cp configs/quickstart.py ~/my_ablation.py   # edit it, then
  ssljax-train --config=$HOME/my_ablation.py --workdir=/tmp/my_ablation

Method-specific fields (heads, loss coefficients, EMA, decoder, ...) and
their published defaults come from the method's own file
(`ssljax.methods.<name>.default_config()`), merged here, so a config only
holds the fields of its method.
"""

import ml_collections

from ssljax import methods
from ssljax.data import augment


def base_config(method="vicreg"):
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Seed of the encoder's init alone (params and batch stats under
  # "encoder"). None: cfg.seed. Set, the encoder is the one a run seeded
  # encoder_seed starts from and the heads stay cfg.seed's, so an
  # experiment can tell which part of an init matters.
  c.encoder_seed = ml_collections.FieldReference(None, field_type=int)
  c.method = method
  c.update(methods.get(method).default_config())
  c.model = ml_collections.ConfigDict(dict(name="resnet50", dtype="float32"))
  c.data = ml_collections.ConfigDict(dict(
      dataset="imagenet2012", data_dir=ml_collections.FieldReference(
          None, field_type=str),
      train_split="train", eval_split="validation", label_key="label",
      image_size=224, global_scale=(0.08, 1.0), num_global=2, num_local=0,
      local_size=96, local_scale=(0.05, 0.4), crop_fraction=0.875,
      mean=augment.IMAGENET_MEAN, std=augment.IMAGENET_STD,
      worker_count=0, num_threads=4,
      # Seed of the input stream: example order, crops and the on-device
      # augmentations' draws. None: cfg.seed, which then seeds everything;
      # set, cfg.seed keeps the init and the method's own draws, so an
      # experiment can vary the init and the data order separately.
      seed=ml_collections.FieldReference(None, field_type=int),
      # Classes (of label key holdout_key) pretraining never sees; the
      # "unseen" evaluation scores them alone (generalization to new
      # classes). holdout_key="coarse_label" holds out whole branches.
      holdout_key="label", holdout_classes=()))
  # Optional data fields, absent unless a config sets them: flip (default
  # True: training crops are flipped w.p. 1/2), interpolation (default
  # "bilinear"; "bicubic": the crops' resize of the official VICReg, Barlow
  # Twins, BYOL, SimCLR and MVEB transforms), cache (default False: True
  # holds the decoded train split in host memory, for small datasets) and
  # cluster = dict(num_clusters, neighbours, iters), clustered mini-batches
  # (ssljax.data.clustered; num_clusters 0 or absent: shuffled batches).
  c.augment = "vicreg"
  c.batch_size = 256
  c.eval_batch_size = 512
  c.num_epochs = 100
  c.num_steps = ml_collections.FieldReference(None, field_type=int)
  c.optimizer = ml_collections.ConfigDict(dict(
      name="lars", base_lr=0.2, weight_decay=1e-6, momentum=0.9,
      trust_coefficient=0.001, warmup_epochs=10.0, warmup_start_factor=0.0,
      end_factor=0.0, clip_norm=0.0, clip_per_param=0.0, bias_lr_scale=1.0,
      nesterov=False, lars_lr_after_momentum=False, cosine_over_total=False,
      warmup_linspace=False, larc_clip=False, larc_exclude_bias_norm=False,
      weight_decay_end=ml_collections.FieldReference(None, field_type=float)))
  c.probe = ml_collections.ConfigDict(dict(lr=1e-3, weight_decay=0.0))
  c.knn = ml_collections.ConfigDict(dict(k=(20, 200), temperature=0.07))
  # Evaluation subsets (names: ssljax.evals.EVALS), run every `eval_every`
  # steps (periodic) and by default in ssljax-eval (cli). coarse_label_keys:
  # label keys above data.label_key, fine to coarse, for hierarchy metrics.
  c.eval = ml_collections.ConfigDict(dict(
      periodic="knn", cli="linear,knn,ncc,cdnv", coarse_label_keys=(),
      random_seed=0))
  # Device mesh: fsdp > 1 splits parameters, optimizer and method state
  # over groups of fsdp devices ("data" × "fsdp"; ssljax.train).
  c.mesh = ml_collections.ConfigDict(dict(fsdp=1))
  c.nonfinite = "stop"
  c.log_every = 50
  c.eval_every = 0
  c.checkpoint = ml_collections.ConfigDict(dict(every=1000, keep=3))
  c.stop_after_steps = ml_collections.FieldReference(None, field_type=int)
  c.progress = True
  c.summary_eval = True  # random-init and final kNN + linear probe
  return c
