"""SimCLR, ResNet-50, ImageNet-1k: the LARS recipe (Chen et al. 2020).

  ssljax-train --config=configs/simclr_resnet50_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/simclr_r50 \\
      --multiprocess

Recipe (paper + google-research/simclr): NT-Xent over the global batch at
temperature 0.1, projector 2048-128 (v1: Linear without bias + BN + ReLU,
last Linear + BN with a scale), SimCLR's augmentations (tf.image colour
jitter of strength 1.0, v2's multiplied brightness; blur 0.5 with one σ
per batch, zero padded) on 224 px crops with scale (0.08, 1), LARS (momentum 0.9, trust 0.001,
wd 1e-6, biases and norms excluded), lr = 0.3 × batch/256, 10 warm-up
epochs then cosine, batch 4096, 1000 epochs, bfloat16 compute.
Runtime: 1000 ImageNet epochs at batch 4096 (not measured with ssljax).
Expected result: 69.3% linear top-1 (the paper's, ResNet-50 1×).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("simclr")
  c.loss = dict(temperature=0.1)
  # The official step (google-research/simclr, v1 as the paper's 69.3%):
  # the last BN of every residual block starts at 0, the stem's max-pool
  # pads as TensorFlow's SAME, the two views are one batch (BN over 2N),
  # the head's kernels N(0, 0.01²), its last BN learns a scale; the v1 head
  # has one hidden layer (2048-2048-128 is v2's); inputs in [0, 1], not
  # standardized.
  c.model = dict(name="resnet50", dtype="bfloat16", zero_init_residual=True,
                 stem_pool_padding="same")
  c.projector = "2048-128"
  c.concat_views = True
  c.head = dict(init_std=0.01, last_bn_scale=True)
  c.data.mean = (0.0, 0.0, 0.0)
  c.data.std = (1.0, 1.0, 1.0)
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.08, 1.0)
  c.data.interpolation = "bicubic"  # the official transforms' resize
  c.data.worker_count = 16
  c.augment = "simclr"
  c.batch_size = 4096
  c.eval_batch_size = 2048
  c.num_epochs = 1000
  c.optimizer.base_lr = 0.3
  c.optimizer.weight_decay = 1e-6
  c.optimizer.warmup_epochs = 10.0
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
