"""Fine-tuning at CPU scale: a pretrained encoder vs the same one from scratch.

  ssljax-train --config=configs/eval/finetune_cpu.py:/tmp/mae --workdir=/tmp/mae_ft
  ssljax-train --config=configs/eval/finetune_cpu.py:/tmp/mae \\
      --config.downstream.init_from= --workdir=/tmp/mae_scratch
  ssljax-eval --workdir=/tmp/mae_ft --evals=classify

Arg: a pretraining workdir (e.g. configs/compare_cpu.py:mae,hierarchical_shapes);
its model and data. The second command trains the same network from its
random init with the same recipe: the control a fine-tuning gain is
measured against. Recipe (MAE's fine-tuning, shrunk, without its
RandAugment / mixup / cutmix / erasing / drop path): AdamW lr 1e-3 ×
batch/256, wd 0.05, layer-wise lr decay 0.75 for ViTs (ResNets: none),
label smoothing 0.1, 10 epochs with 1 warm-up, cosine; crops
RandomResizedCrop(scale 0.08–1) + flip, evaluation on the full image.
ssljax's choices for CPU scale: 10 epochs (the pretraining budget of the
comparison), decay 0.75 (MAE uses 0.75 for ViT-L, 0.65 for ViT-B: the
12-block ViT-tiny of the comparison is as deep as ViT-B but its features
are weaker, so less decay).
Runtime: about 10 min for compare_cpu's ViT-tiny on 2 CPU cores.
"""

from ssljax.experiments import load_config


def get_config(arg=None):
  c = load_config("eval/linear_cpu", arg)
  c.downstream.update(mode="finetune", head_init_std=2e-5,
                      label_smoothing=0.1,
                      layer_decay=0.75 if c.model.name.startswith("vit")
                      else 1.0)
  c.optimizer.update(name="adamw", base_lr=1e-3, weight_decay=0.05,
                     warmup_epochs=1.0)
  return c
