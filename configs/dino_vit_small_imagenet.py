"""DINO, ViT-S/16, ImageNet-1k: the official "boosted" recipe (Caron et al. 2021).

  ssljax-train --config=configs/dino_vit_small_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/dino_vits16 \\
      --multiprocess

Recipe (facebookresearch/dino README "Boosting DINO performance", full
command, on main_dino.py's defaults): ViT-S/16 with drop path 0.1 (student
only), head 2048-2048-256 -> 65,536 with a learned last-layer gain
(`norm_last_layer false`), frozen for the first epoch; teacher EMA 0.996
-> 1 (cosine), teacher temperature 0.04 -> 0.07 over 30 epochs, student
0.1, center momentum 0.9; multi-crop 2 × 224 (scale 0.4–1) + 8 × 96
(0.05–0.4) with torchvision's colour jitter and PIL's blur (blur 1 / 0.1 /
0.5, solarize on the second global view: the "dino" recipe); AdamW at lr 5e-4 × batch/256 after 10 warm-up
epochs, cosine to 1e-6, weight decay 0.04 -> 0.4 (cosine), gradients
clipped per parameter at norm 3; batch 1024 (16 GPUs × 64), 300 epochs.
Where ssljax differs: bfloat16 compute (the official code uses fp16 with
a loss scaler); the last layer's initial directions (dino.py docstring).
Evaluation reads the student's class token, the official evaluations
the teacher's.
Runtime: 2.6 days on 16 GPUs for the official run (not measured with
ssljax).
Expected result (the README's): 76.1% linear, 73.3% k-NN top-1.
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("dino")
  c.model = dict(name="vit_small", patch_size=16, image_size=224, pool="cls",
                 drop_path=0.1, dtype="bfloat16")
  c.dino.update(out_dim=65536, hidden_dim=2048, bottleneck_dim=256,
                head_layers=3, norm_last_layer=False, student_temp=0.1,
                teacher_temp=0.07, warmup_teacher_temp=0.04,
                warmup_teacher_temp_epochs=30, center_momentum=0.9,
                freeze_last_layer_epochs=1)
  c.ema.update(base=0.996, schedule="cosine")
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.4, 1.0)
  c.data.num_local = 8
  c.data.local_size = 96
  c.data.local_scale = (0.05, 0.4)
  c.data.worker_count = 16
  c.augment = "dino"
  c.batch_size = 1024
  c.eval_batch_size = 2048
  c.num_epochs = 300
  c.optimizer.update(name="adamw", base_lr=5e-4, weight_decay=0.04,
                     weight_decay_end=0.4, clip_per_param=3.0,
                     warmup_epochs=10.0, warmup_start_factor=0.0,
                     end_factor=1e-6 / (5e-4 * 1024 / 256))
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
