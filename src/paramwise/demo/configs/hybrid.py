# The second config `paramwise demo` runs: Muon for the hidden matrices of a small language model,
# AdamW for the rest (embeddings, the output head, norms), from one optim_wrapper. The route's
# optimizer is its own base: its lr and weight_decay are where the multipliers of paramwise_cfg start.
# One schedule drives both optimizers, each group keeping its ratio to its route's base.
optim_wrapper = dict(
    optimizer=dict(type="AdamW", lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        routes=[dict(params="hidden_matrices",
                     optimizer=dict(type="Muon", lr=0.02, momentum=0.95, weight_decay=0.1,
                                    adjust_lr_fn="match_rms_adamw"))],
    ),
    clip_grad=dict(max_norm=1.0),
)

param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=10, end=60, eta_min_ratio=0.1),
]
