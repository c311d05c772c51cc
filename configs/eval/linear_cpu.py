"""Linear evaluation on augmented images, CPU scale (VICReg's protocol, shrunk).

  ssljax-train --config=configs/eval/linear_cpu.py:/tmp/run --workdir=/tmp/run_linear
  ssljax-eval --workdir=/tmp/run_linear --evals=classify

Arg: the workdir of a pretraining run (any method with a ResNet or ViT,
e.g. one of configs/compare_cpu.py) or of an ssljax-import; its config
gives the model and the data (dataset, image size, normalization). No arg:
the model of configs/compare_cpu.py on hierarchical_shapes, from its
random init (the control). The protocol of facebookresearch/vicreg
`evaluate.py` at CPU scale: frozen trunk in eval mode, linear head ~
N(0, 0.01²), SGD momentum 0.9, lr 0.3 (the official script's default
`--lr-head`; the paper's tables use 0.02) at batch 256, wd 1e-6, cosine
without warm-up; training crops RandomResizedCrop(scale 0.08–1) + flip, no
colour augmentation; evaluation on the full image (32 px: no centre crop).
ssljax's choice where VICReg is silent for 32 px data: 10 epochs (the
comparison's pretraining budget; VICReg trains ImageNet heads for 100).
Runtime: about 2 min for a width-8 ResNet-18 on 2 CPU cores.
"""

from ssljax import checkpoint
from ssljax import configs
from ssljax.experiments import load_config


def get_config(arg=None):
  c = configs.base_config("downstream")
  pre = (checkpoint.load_config(arg) if arg else
         load_config("compare_cpu", "vicreg,hierarchical_shapes"))
  c.model = pre.model
  c.data.update({k: pre.data[k] for k in (
      "dataset", "data_dir", "train_split", "eval_split", "label_key",
      "image_size", "mean", "std")})
  c.data.data_dir = pre.data.get("data_dir")
  c.data.num_global = 1
  c.data.global_scale = (0.08, 1.0)
  c.data.crop_fraction = 1.0
  c.augment = "none"
  c.downstream.init_from = arg or ""
  c.downstream.mode = "linear"
  # The fine classes of the shipped datasets; others: --config.downstream.
  # num_classes=N (a mismatch with the data is an error before training).
  c.downstream.num_classes = {"hierarchical_shapes": 24, "mnist5k": 10}.get(
      pre.data.dataset.split("/")[0].split(":")[0], 1000)
  c.downstream.head_init_std = 0.01
  c.batch_size = 256
  c.eval_batch_size = 200
  c.num_epochs = 10
  c.optimizer.name = "sgd"
  c.optimizer.base_lr = 0.3
  c.optimizer.momentum = 0.9
  c.optimizer.weight_decay = 1e-6
  c.optimizer.warmup_epochs = 0.0
  c.eval.cli = "classify,linear,knn"
  c.summary_eval = False
  c.log_every = 10
  c.checkpoint.every = 100
  return c
