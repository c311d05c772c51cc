"""Reverse-engineering SSL (Ben-Shaul et al. 2023) on a CPU: VICReg, then
NCC / CDNV / hierarchy metrics per layer over the kept checkpoints.

  python -m ssljax.experiments.reverse_ssl --workdir=/tmp/reverse_ssl
  python -m ssljax.experiments.reverse_ssl \
      --config=configs/reverse_ssl.py:mnist5k --workdir=/tmp/reverse_ssl_mnist

Default dataset `hierarchical_shapes` (24 fine classes in 6 shape families
in 2 super-families, generated offline; metrics at all three levels), 16
epochs of a width-8 ResNet-18, a checkpoint every 2 epochs; `:mnist5k` (10 digits, no hierarchy), 24 epochs. The
measured runtimes and results are in docs/results/reverse_ssl.md.
"""

from ssljax import configs

# name -> (epochs, examples in the train split, coarse label keys)
DATASETS = {"hierarchical_shapes": (16, 10_000,
                                    ("coarse_label", "super_label")),
            # version 2.0.0 (the earlier results)
            "hierarchical_shapes_v2": (16, 10_000,
                                       ("coarse_label", "super_label")),
            "mnist5k": (24, 4_000, ())}


def get_config(arg=None):
  dataset = arg or "hierarchical_shapes"
  if dataset not in DATASETS:
    raise ValueError(f"Unknown dataset {dataset!r}; valid: "
                     f"{', '.join(DATASETS)}.")
  epochs, num_train, coarse = DATASETS[dataset]
  c = configs.base_config("vicreg")
  c.model = dict(name="resnet18", stem="cifar", width=8, dtype="float32")
  c.projector = "512-512-512"
  c.data.dataset = dataset
  c.data.eval_split = "test"
  c.data.image_size = 32
  c.data.global_scale = (0.5, 1.0)
  c.data.crop_fraction = 1.0
  c.augment = "cifar"
  c.batch_size = 256
  c.eval_batch_size = 512
  c.num_epochs = epochs
  c.optimizer.name = "adamw"  # LARS is for 10^5-step runs (quickstart.py)
  c.optimizer.base_lr = 2e-3
  c.optimizer.weight_decay = 1e-4
  c.optimizer.warmup_epochs = 0.5
  c.log_every = 10
  steps_per_epoch = num_train // c.batch_size
  c.checkpoint.every = 2 * steps_per_epoch
  c.checkpoint.keep = epochs  # keep every checkpoint: they are the curve
  c.summary_eval = False  # the experiment evaluates every checkpoint itself
  c.eval.coarse_label_keys = coarse
  # What ssljax.experiments.reverse_ssl computes at step 0 and every
  # checkpoint.
  c.eval.cli = "ncc,cdnv,hierarchy,rankme,layers,random"
  return c
