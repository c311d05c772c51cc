"""NNCLR, ResNet-50, ImageNet-1k: the paper's recipe (Dwibedi et al. 2021).

  ssljax-train --config=configs/nnclr_resnet50_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/nnclr_r50 \\
      --multiprocess

Recipe (the paper; no official code was released): support set 98,304,
temperature 0.1, projector 2048-2048-256 and predictor 4096-256, BYOL's
augmentation probabilities with torchvision's ops (solo-learn's
asymmetric.yaml: the "nnclr" recipe) on 224 px crops with scale (0.08, 1), LARS (momentum 0.9,
trust 0.001, wd 1e-6, biases and norms excluded), lr = 0.3 × batch/256,
batch 4096, 1000 epochs, 10 warm-up epochs then cosine, bfloat16 compute.
Runtime: 1000 ImageNet epochs at batch 4096 (not measured with ssljax).
Expected result: 75.4% linear top-1 (the paper's, ResNet-50).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("nnclr")
  c.model = dict(name="resnet50", dtype="bfloat16")
  c.projector = "2048-2048-256"
  c.predictor = "4096-256"
  c.loss = dict(temperature=0.1)
  c.support_set.size = 98_304
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.08, 1.0)
  c.data.worker_count = 16
  c.augment = "nnclr"
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
