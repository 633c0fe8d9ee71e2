# A schedule in the shape OpenMMLab configs use (mmengine's optim_wrapper, the optimizer inside it):
# AdamW where norm layers, biases and depthwise convs get no weight decay. `paramwise demo` runs
# ../demo.py, which inherits this file through _base_ and adds per-module learning rates.
lr = 3e-3
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=lr, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, dwconv_decay_mult=0.0),
)
