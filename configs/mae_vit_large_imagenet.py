"""MAE, ViT-L/16, ImageNet-1k: the official pretraining recipe (He et al. 2022).

  ssljax-train --config=configs/mae_vit_large_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/mae_vitl \\
      --multiprocess [--config.mesh.fsdp=4]

Recipe: configs/mae_vit_base_imagenet.py's (the same main_pretrain.py
arguments: mask ratio 0.75, decoder 512 wide × 8 blocks × 16 heads,
norm-pix loss, crop (0.2, 1) + flip, AdamW β (0.9, 0.95), wd 0.05, base lr
1.5e-4 × batch/256, 40 warm-up epochs, batch 4096, 800 epochs) with the
ViT-L/16 encoder (`--model mae_vit_large_patch16`: width 1024, 24 blocks,
16 heads; 304 M parameters). Parameters + AdamW moments + gradients are
≈ 4.9 GB in float32; on 16 GB chips (v5e) shard them with `mesh.fsdp`
(benchmarks/scale.py gives the per-device memory of each setting).
Fine-tuning it: configs/eval/mae_finetune_imagenet.py with the paper's
ViT-L settings, `--config.model.name=vit_large --config.num_epochs=50
--config.optimizer.base_lr=1e-3 --config.downstream.layer_decay=0.75
--config.model.drop_path=0.2`.
Runtime: 800 ImageNet epochs at batch 4096 (not measured with ssljax).
Expected result (the paper's, ViT-L/16): 84.9% fine-tuning and 73.5% linear
at 800 epochs (its Table 1 default), 85.9% fine-tuning at 1600 epochs.
"""

import importlib.util
import os


def get_config(arg=None):
  del arg
  spec = importlib.util.spec_from_file_location(
      "mae_vit_base_imagenet",
      os.path.join(os.path.dirname(__file__), "mae_vit_base_imagenet.py"))
  base = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(base)
  c = base.get_config()
  c.model.name = "vit_large"
  return c
