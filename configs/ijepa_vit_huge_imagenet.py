"""I-JEPA, ViT-H/14, ImageNet-1k: the official recipe (Assran et al. 2023).

  ssljax-train --config=configs/ijepa_vit_huge_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/ijepa_vith14 \\
      --multiprocess

Recipe (facebookresearch/ijepa configs/in1k_vith14_ep300.yaml): ViT-H/14
context encoder at 224 px (16×16 patches), predictor 384 wide and 12
blocks deep; masks: 4 target blocks of scale 0.15–0.2 and aspect
0.75–1.5, one context block of scale 0.85–1.0 without them, min_keep 10;
EMA target, momentum 0.996 -> 1 linearly; smooth-L1 loss; one view,
RandomResizedCrop(224, scale 0.3–1), no flip, no colour augmentation;
AdamW, lr 1e-3 at batch 2048 (ssljax scales lr by batch/256: base_lr
1.25e-4) after 40 warm-up epochs from 2e-4, cosine to 1e-6, weight decay
0.04 -> 0.4 (cosine), biases and norms without decay, batch 2048 (16 ×
128), 300 epochs, bfloat16 compute. Where ssljax differs: learned
position embeddings in the encoder and Flax's initializers
(ssljax.methods.ijepa). Evaluation reads the mean of the encoder's final
tokens (`pool="gap"`), not the paper's probe features (docs/reproduce.md).
Runtime: 300 ImageNet epochs of ViT-H/14 (the paper: under 72 h on 16
A100s; not measured with ssljax).
Expected result (the paper's): 79.3% linear top-1 (ViT-H/14, 300 epochs).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("ijepa")
  c.model = dict(name="vit_huge", patch_size=14, image_size=224, pool="gap",
                 dtype="bfloat16")
  c.ijepa.update(pred_width=384, pred_depth=12, num_targets=4,
                 target_scale=(0.15, 0.2), context_scale=(0.85, 1.0),
                 aspect=(0.75, 1.5), min_keep=10, loss="smooth_l1")
  c.ema.update(base=0.996, schedule="linear")
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.3, 1.0)
  c.data.num_global = 1
  c.data.flip = False
  c.data.worker_count = 16
  c.augment = "none"
  c.batch_size = 2048
  c.eval_batch_size = 2048
  c.num_epochs = 300
  c.optimizer.update(name="adamw", base_lr=1e-3 * 256 / 2048,
                     weight_decay=0.04, weight_decay_end=0.4,
                     warmup_epochs=40.0, warmup_start_factor=0.2,
                     end_factor=1e-3)
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
