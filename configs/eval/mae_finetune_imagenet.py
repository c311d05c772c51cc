"""MAE's end-to-end fine-tuning on ImageNet (facebookresearch/mae main_finetune.py).

  ssljax-train --config=configs/eval/mae_finetune_imagenet.py:gs://BUCKET/mae_vitb \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/mae_vitb_ft

Arg: the MAE pretraining workdir or an ssljax-import of the released ViT-B.
What ssljax follows: ViT-B/16 fine-tuned end to end, AdamW (β 0.9, 0.999)
at lr 5e-4 × batch/256 (the `--blr` of the paper's ViT-B), batch 1024,
wd 0.05, layer-wise lr decay 0.65, label smoothing 0.1, 100 epochs with 5
warm-up, cosine, head ~ N(0, 2e-5²), global average pooling of the patch
tokens, drop path 0.1, timm's RandAugment rand-m9-mstd0.5-inc1 and random
erasing 0.25 (pixel mode, one box), mixup 0.8 / cutmix 1.0 switched with
probability 0.5 (ssljax.data.randaugment, ssljax.data.mixup: jnp on
device). Where ssljax differs: RandAugment's geometric ops sample
bilinearly (timm: bicubic); mixup pairs examples across the global batch
(timm: within each GPU's); ssljax's `gap` pool takes the LayerNorm before
the mean where MAE's fc_norm takes it after; MAE keeps weight decay off
the position embeddings and class token, ssljax applies it to every ≥ 2-D
parameter; the crops are resized on the host (bicubic in MAE).
Runtime: 100 epochs of ViT-B at batch 1024 (not measured with ssljax).
Expected result: 83.6% top-1 for the paper's 1600-epoch ViT-B (not
reproduced with ssljax).
"""

from ssljax import configs


def get_config(arg=None):
  c = configs.base_config("downstream")
  c.model = dict(name="vit_base", patch_size=16, image_size=224, pool="gap",
                 dtype="bfloat16", drop_path=0.1)
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.num_global = 1
  c.data.global_scale = (0.08, 1.0)
  c.data.crop_fraction = 0.875
  c.data.worker_count = 16
  c.augment = "randaugment"
  c.downstream.update(init_from=arg or "", mode="finetune", num_classes=1000,
                      head_init_std=2e-5, label_smoothing=0.1,
                      layer_decay=0.65, mixup_alpha=0.8, cutmix_alpha=1.0,
                      mix_switch_prob=0.5, mix_prob=1.0)
  c.batch_size = 1024
  c.eval_batch_size = 2048
  c.num_epochs = 100
  c.optimizer.update(name="adamw", base_lr=5e-4, weight_decay=0.05,
                     warmup_epochs=5.0)
  c.eval.cli = "classify"
  c.summary_eval = False
  c.log_every = 100
  c.checkpoint.every = 2000
  return c
