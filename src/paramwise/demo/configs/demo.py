# The config `paramwise demo` runs (and a starting point for your own), written as OpenMMLab
# configs are: it inherits the schedule through _base_, and its own optim_wrapper merges into the
# base's. The pretrained-style backbone learns ten times slower, the head twice as fast.
#
# Rule order (mmengine's): the first matching custom key decides a parameter, so backbone norms
# and biases keep the backbone's decay; the multipliers apply to everything no custom key matched.
_base_ = ["_base_/schedule.py"]

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            "backbone": dict(lr_mult=0.1),
            "head": dict(lr_mult=2.0),
        },
    ),
)
