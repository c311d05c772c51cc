"""BYOL, ResNet-50, ImageNet-1k: the official recipe (Grill et al. 2020).

  ssljax-train --config=configs/byol_resnet50_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/byol_r50 \\
      --multiprocess

Recipe (paper + deepmind-research/byol, 1000-epoch setting): projector and
predictor 4096-256 (Linear with bias + BN + ReLU, Linear without bias), EMA
target momentum 0.996 -> 1 (cosine), BYOL's augmentations (its JAX ops:
additive brightness, per-channel contrast, HSV saturation, a 23-tap blur
with zero padding at 1.0 / 0.1, solarize 0 / 0.2 at 0.5) on 224 px crops with scale (0.08, 1), LARS (momentum 0.9,
trust 0.001, wd 1.5e-6, biases and norms excluded), lr = 0.2 × batch/256,
10 warm-up epochs then cosine to 0, batch 4096, 1000 epochs, bfloat16
compute. tests/test_recipe_byol.py: the step equals the official one
(transcribed in PyTorch), the target's init drawn on its own as the
official one's (`ema.independent_init`). Departures left: Haiku's BN
running averages are zero-debiased (evaluation only: equal to
ssljax's within 0.9^t after t steps), and its online classifier trains in
the same LARS (ssljax's probe has its own optimizer; neither reaches the
encoder). (The paper's 300-epoch setting uses base lr 0.3, wd 1e-6, EMA base
0.99.)
Runtime: 1000 ImageNet epochs at batch 4096 (not measured with ssljax).
Expected result: 74.3% linear top-1 (the paper's).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("byol")
  # deepmind-research/byol: the last BN scale of every block starts at 0
  # (Haiku's BlockV1), every convolution and the stem's max-pool pad as
  # SAME, Haiku's truncated-normal init, the heads' last Linear has no
  # bias, and its LARS applies the rate after the momentum.
  c.model = dict(name="resnet50", dtype="bfloat16", zero_init_residual=True,
                 stem_pool_padding="same", conv_padding="same",
                 haiku_init=True)
  c.projector = "4096-256"
  c.predictor = "4096-256"
  c.last_bias = False
  c.ema.base = 0.996
  c.ema.independent_init = True  # the target's init drawn on its own
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.08, 1.0)
  c.data.interpolation = "bicubic"  # the official transforms' resize
  c.data.worker_count = 16
  c.augment = "byol"
  c.batch_size = 4096
  c.eval_batch_size = 2048
  c.num_epochs = 1000
  c.optimizer.base_lr = 0.2
  c.optimizer.weight_decay = 1.5e-6
  c.optimizer.warmup_epochs = 10.0
  c.optimizer.lars_lr_after_momentum = True
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
