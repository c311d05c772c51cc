"""MAE, ViT-B/16, ImageNet-1k: the official pretraining recipe (He et al. 2022).

  ssljax-train --config=configs/mae_vit_base_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/mae_vitb \\
      --multiprocess

Recipe (paper + facebookresearch/mae main_pretrain.py): ViT-B/16 encoder on
the visible 25% of the patches (mask ratio 0.75), decoder 512 wide, 8
blocks, 16 heads, norm-pix loss; random-resized crop (0.2, 1) + horizontal
flip only (no colour augmentation); AdamW β = (0.9, 0.95), weight decay
0.05 (weights only: biases and LayerNorms excluded, as timm's
add_weight_decay), base lr 1.5e-4 × batch/256, 40 warm-up epochs then
cosine to 0, batch 4096, 800 epochs (the paper also reports 1600),
bfloat16 compute with float32 loss. The online probe reads the CLS token
of the masked forward pass (`mae.probe_full_image=False`): a probe on the
full image needs one more encoder forward, 35.6 of 95.1 GFLOP per example
at this size (XLA's count, benchmarks/scale.py), a cost the official
recipe does not have. Evaluation always reads the full image.
Runtime: 800 ImageNet epochs at batch 4096 (not measured with ssljax).
Expected result: the paper quotes ViT-B/16 after 1600 epochs, not the
800 this config runs (its 800-epoch ablations are ViT-L's): 68.0% linear
probe, 83.6% fine-tuning top-1 (67.8% linear in the PyTorch repo). For
those numbers run --config.num_epochs=1600.
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("mae")
  c.model = dict(name="vit_base", patch_size=16, image_size=224,
                 dtype="bfloat16")
  c.mae.update(mask_ratio=0.75, norm_pix_loss=True, decoder_width=512,
               decoder_depth=8, decoder_heads=16, pool="cls",
               probe_full_image=False)
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.2, 1.0)
  c.data.num_global = 1
  c.data.worker_count = 16
  c.augment = "none"  # crop + flip happen on the host
  c.batch_size = 4096
  c.eval_batch_size = 2048
  c.num_epochs = 800
  c.optimizer = dict(name="adamw", base_lr=1.5e-4, b1=0.9, b2=0.95,
                     weight_decay=0.05, warmup_epochs=40.0,
                     warmup_start_factor=0.0, end_factor=0.0, clip_norm=0.0,
                     momentum=0.9, trust_coefficient=0.001)
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
