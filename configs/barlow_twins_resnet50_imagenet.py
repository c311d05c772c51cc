"""Barlow Twins, ResNet-50, ImageNet-1k: the official recipe (Zbontar et al. 2021).

  ssljax-train --config=configs/barlow_twins_resnet50_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/bt_r50 \\
      --multiprocess

Recipe (facebookresearch/barlowtwins main.py): projector 8192-8192-8192
(Linear without bias + BN + ReLU, last Linear without bias), λ = 0.0051,
batch 2048, 1000 epochs, LARS (momentum 0.9, trust 0.001, wd 1e-6, biases
and norms excluded from both), lr = 0.2 × batch/256 for weights and
0.0048 × batch/256 for biases and BN parameters (`optimizer.bias_lr_scale`
= 0.024), 10 warm-up epochs from 0 then cosine to 0.001 × the peak,
ResNet-50 with zero-initialized residual BN, BYOL's asymmetric
augmentations (blur 1.0 / 0.1, solarize 0 / 0.2) on 224 px crops with
scale (0.08, 1), bfloat16 compute (the official code uses fp16 autocast).
Runtime: 1000 ImageNet epochs of ResNet-50 at batch 2048 (not measured with
ssljax). Expected result: 73.2% linear top-1 (the paper's).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("barlow_twins")
  # torchvision's ResNet-50 (zero_init_residual, its init, the projector's
  # nn.Linear init) with SyncBatchNorm's unbiased running variance.
  c.model = dict(name="resnet50", dtype="bfloat16", zero_init_residual=True,
                 torch_init=True, unbiased_running_var=True)
  c.projector = "8192-8192-8192"
  # The paper's 32 GPUs: the official applied gradient is the true one / 32
  # (ssljax.methods.barlow_twins).
  c.loss = dict(lambd=0.0051, ddp_world_size=32)
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.08, 1.0)
  c.data.interpolation = "bicubic"  # the official transforms' resize
  c.data.worker_count = 16
  c.augment = "barlow_twins"
  c.batch_size = 2048
  c.eval_batch_size = 2048
  c.num_epochs = 1000
  c.optimizer.base_lr = 0.2
  c.optimizer.weight_decay = 1e-6
  c.optimizer.warmup_epochs = 10.0
  c.optimizer.end_factor = 1e-3
  c.optimizer.bias_lr_scale = 0.0048 / 0.2
  c.optimizer.lars_lr_after_momentum = True  # the official LARS
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
