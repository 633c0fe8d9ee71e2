# The config `paramwise demo` runs (and a starting point for your own): AdamW where the
# pretrained-style backbone learns ten times slower, the head twice as fast, and norm layers,
# biases and depthwise convs get no weight decay.
#
# Rule order (mmengine's): the first matching custom key decides a parameter, so backbone norms
# and biases keep the backbone's decay; the multipliers apply to everything no custom key matched.
optimizer = dict(
    type="AdamW",
    lr=3e-3,
    weight_decay=0.05,
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        dwconv_decay_mult=0.0,
        custom_keys={
            "backbone": dict(lr_mult=0.1),
            "head": dict(lr_mult=2.0),
        },
    ),
)
