# A schedule in the shape OpenMMLab configs use (mmengine's optim_wrapper, the optimizer inside it):
# AdamW where norm layers, biases and depthwise convs get no weight decay. `paramwise demo` runs
# ../demo.py, which inherits this file through _base_ and adds per-module learning rates.
# 3e-2: the demo model normalizes with GroupNorm (exact under accumulation), which learns more slowly
# than BatchNorm at 1e-2 in a 100-step run
lr = 3e-2
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=lr, weight_decay=0.05),
    clip_grad=dict(type="norm", max_norm=1.0),  # clip the gradient norm at 1 (after accumulating)
    accumulative_counts=2,  # one optimizer step per 2 iterations, the loss scaled by 1/2
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, dwconv_decay_mult=0.0),
)

# Per iteration, as OpenMMLab's iteration-based schedules: a linear warmup, then cosine decay to 10% of
# each group's own lr (eta_min_ratio keeps the ratios set by lr_mult). `paramwise demo` steps it.
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=5),
    dict(type="CosineAnnealingLR", eta_min_ratio=0.1, by_epoch=False, begin=5, end=100, T_max=95),
]
