"""MVEB, ResNet-50, ImageNet-1k: the official recipe (Wen et al., TPAMI 2024).

  ssljax-train --config=configs/mveb_resnet50_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/mveb_r50 \\
      --multiprocess

On a Cloud TPU pod slice (e.g. v4-64: 32 chips, 4096/32 = 128 samples per
device, as in the paper's per-device score estimate), run the command on
every host. Recipe (Wen et al. 2024 and wlj6816/MVEB): ResNet-50 with
zero-initialized last BN of each residual block, projector 2048-2048-2048
(hidden Linear without bias + BN + ReLU, last Linear with bias), EMA target
with momentum 0.996 -> 1 (cosine), multi-crop 2 × 224 px (scale 0.4–1) +
6 × 96 px (scale 0.05–0.4), blur p 1.0 / 0.1 and solarize p 0 / 0.2 on the
two global views (local views: blur 0.5), LARS (momentum 0.9, trust 0.001,
wd 1e-6, biases and norms excluded from wd and adaptation), lr = 0.3 ×
batch/256 with 10 warm-up epochs from 1e-3·lr, then the official adjust_lr's
cosine towards 1e-3·lr with phase π·(t − warm-up)/T over all T steps, batch
4096, 800 epochs, bfloat16 compute (float32 losses and solve), BN statistics
over the global batch (SyncBN), non-finite updates skipped and counted.
λ = 0.01, η = 0.01, τ ≥ 0.1, score estimated per device. kNN monitor k=200,
T=0.1.
Runtime: 800 ImageNet epochs of ResNet-50 with multi-crop at batch 4096 (not
measured with ssljax). Expected result: 76.9% linear top-1 (the paper's).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("mveb")
  c.loss = dict(lambd=0.01, eta=0.01, min_tau=0.1, score_scope="per_device")
  # The official network: torchvision's ResNet-50 with zero_init_residual
  # and PyTorch's initialization (trunk and projector), SyncBatchNorm
  # (PyTorch's unbiased running variance).
  c.model = dict(name="resnet50", zero_init_residual=True, dtype="bfloat16",
                 torch_init=True, unbiased_running_var=True)
  c.projector = "2048-2048-2048"
  c.ema.base = 0.996
  # project/model.py updates the target at the start of the next step,
  # with that step's momentum.
  c.ema.next_step_momentum = True
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.4, 1.0)
  c.data.interpolation = "bicubic"  # the official transforms' resize
  c.data.num_global = 2
  c.data.num_local = 6
  c.data.local_size = 96
  c.data.local_scale = (0.05, 0.4)
  c.data.worker_count = 16
  c.augment = "mveb"
  c.batch_size = 4096
  c.eval_batch_size = 2048
  c.num_epochs = 800
  c.optimizer = dict(name="lars", base_lr=0.3, weight_decay=1e-6,
                     momentum=0.9, trust_coefficient=0.001,
                     warmup_epochs=10.0, warmup_start_factor=1e-3,
                     end_factor=1e-3, clip_norm=0.0,
                     # project/pretrainer.py's LARS: the rate applied to
                     # the whole momentum buffer.
                     lars_lr_after_momentum=True,
                     # adjust_lr: cos(π·(t − warm-up)/T), T all steps.
                     cosine_over_total=True)
  c.nonfinite = "skip"
  c.knn = dict(k=(200,), temperature=0.1)
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
