"""SwAV, ResNet-50, ImageNet-1k: the official 800-epoch recipe (Caron et al. 2020).

  ssljax-train --config=configs/swav_resnet50_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/swav_r50 \\
      --multiprocess

Recipe (facebookresearch/swav scripts/swav_800ep_pretrain.sh): multi-crop
2 × 224 (scale 0.14–1) + 6 × 96 (scale 0.05–0.14), codes from the two 224
crops, temperature 0.1, ε 0.05, 3 Sinkhorn iterations, projector 2048-128,
3000 prototypes frozen for 313 steps, no queue, batch 4096, 800 epochs,
SGD with apex's LARC on every parameter (trust 0.001, momentum 0.9, wd
1e-6) at lr 4.8 = 0.3 × 4096/256, 10 warm-up epochs from 0.3 (linspace:
the peak at the last) then cosine to 0.0048, crops of one size in one
encoder pass (tests/test_recipe_swav.py: the official step), apex SyncBN
in process groups of 8 of the 64 GPUs (model.bn_groups = 8: BN
statistics over each 512 images of the 4096, the running statistics
group 0's, which rank 0 saves),
bfloat16 compute (the official: apex fp16). Augmentations: the "swav"
recipe, main_swav.py's: colour jitter of strength 0.8 / 0.2 (hue), gray
0.2 and PIL's blur 0.5 on every crop, no solarize.
Runtime: 800 ImageNet epochs at batch 4096 (not measured with ssljax).
Expected result: 75.3% linear top-1 (the official README's).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("swav")
  # src/resnet50.py: torchvision's init (no zero_init_residual), PyTorch's
  # Linear init, SyncBatchNorm; main_swav.py: crops of one size in one
  # pass, the head over all crops.
  # SyncBN process groups of 8 GPUs × 64 images (--sync_bn apex, its
  # syncbn_process_group_size 8): 4096 / 512 = 8 groups.
  c.model = dict(name="resnet50", dtype="bfloat16", torch_init=True,
                 unbiased_running_var=True, bn_groups=8)
  c.concat_views = True
  c.projector = "2048-128"
  c.swav.update(num_prototypes=3000, temperature=0.1, epsilon=0.05,
                sinkhorn_iterations=3, freeze_prototypes_steps=313)
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.14, 1.0)
  c.data.num_local = 6
  c.data.local_size = 96
  c.data.local_scale = (0.05, 0.14)
  c.data.worker_count = 16
  c.augment = "swav"
  c.batch_size = 4096
  c.eval_batch_size = 2048
  c.num_epochs = 800
  c.optimizer.base_lr = 0.3
  c.optimizer.weight_decay = 1e-6
  c.optimizer.warmup_epochs = 10.0
  c.optimizer.warmup_start_factor = 0.3 / 4.8
  c.optimizer.end_factor = 1e-3
  # SGD + apex LARC (trust 0.001, clip False) on every parameter; the
  # warm-up is np.linspace(0.3, 4.8, ...), the peak at its last step.
  c.optimizer.name = "larc"
  c.optimizer.warmup_linspace = True
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
