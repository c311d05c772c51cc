"""MAE's linear probe on ImageNet (facebookresearch/mae main_linprobe.py).

  ssljax-train --config=configs/eval/mae_linprobe_imagenet.py:gs://BUCKET/mae_vitb \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/mae_vitb_linprobe

Arg: the MAE pretraining workdir (configs/mae_vit_base_imagenet.py) or an
ssljax-import of the released ViT-B. Protocol: frozen ViT-B/16 (its class
token after the final LayerNorm), BatchNorm without affine (eps 1e-6)
before a linear head ~ N(0, 0.01²), LARS (trust 0.001, momentum 0.9) at lr
0.1 × batch/256, batch 16384, wd 0, 90 epochs with 10 warm-up, cosine;
RandomResizedCrop(224) + flip, evaluation resize 256 → centre 224. ssljax's
ViT trunk learns its position embeddings: MAE's fixed sin-cos ones are
loaded into it and stay fixed here because the trunk is frozen.
Runtime: 90 epochs of a frozen ViT-B forward at batch 16384 (not measured
with ssljax). Expected result: 68.0% top-1 (the paper's, ViT-B, 1600
pretraining epochs).
"""

from ssljax import configs


def get_config(arg=None):
  c = configs.base_config("downstream")
  c.model = dict(name="vit_base", patch_size=16, image_size=224,
                 dtype="bfloat16")
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.num_global = 1
  c.data.global_scale = (0.08, 1.0)
  c.data.crop_fraction = 0.875
  c.data.worker_count = 16
  c.augment = "none"
  c.downstream.update(init_from=arg or "", mode="linear", num_classes=1000,
                      head_norm="bn", head_init_std=0.01)
  c.batch_size = 16384
  c.eval_batch_size = 2048
  c.num_epochs = 90
  c.optimizer.update(name="lars", base_lr=0.1, momentum=0.9,
                     weight_decay=0.0, warmup_epochs=10.0)
  c.eval.cli = "classify"
  c.summary_eval = False
  c.log_every = 100
  c.checkpoint.every = 1000
  return c
