"""Where users already train: PyTorch Lightning (``integrations.lightning``) and Hugging Face's ``Trainer``
(``integrations.hf``), driven by one paramwise config.

Owns: the glue between a framework's hooks and paramwise's builders; each module imports its framework
lazily (only where it is installed) and adds nothing to the layers below: it calls
``build_optimizer``, ``build_scheduler`` and ``build_optim_wrapper``.
May import: everything below it (the wrapper, schedule, build, state, plan, config and the base).
"""
