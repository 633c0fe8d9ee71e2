"""LightningCLI with parameter groups from YAML: ``python examples/lightning_cli/main.py fit --config
examples/lightning_cli/config.yaml``.

LightningCLI's own ``--optimizer`` gets ``model.parameters()``, so it cannot make groups. Here the module
takes the whole paramwise config as one init argument (``model.paramwise_config`` in the YAML: a dict,
or the path of a paramwise config file); its ``configure_optimizers`` builds the optimizer and schedule
from it, and its ``configure_callbacks`` adds the ``ParamwiseCallback`` that applies ``clip_grad``,
``accumulative_counts`` and logs every group's lr. Nothing is copied into Trainer flags.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paramwise.integrations.lightning import ParamwiseCallback, configure_optimizers


class TinyRegressor(pl.LightningModule):
    """A backbone and a head fitting a sum of inputs; groups, schedule and clipping come from the YAML."""

    def __init__(self, paramwise_config: dict[str, Any] | str, hidden: int = 16, batches: int = 8) -> None:
        super().__init__()
        self.paramwise_config = paramwise_config
        self.batches = batches
        self.backbone = nn.Sequential(nn.Linear(4, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.backbone(x)))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("loss", loss)
        return loss

    def train_dataloader(self) -> DataLoader:
        x = torch.randn(self.batches * 4, 4, generator=torch.Generator().manual_seed(0))
        return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)

    # the paramwise way: one config drives the optimizer, the schedule and the wrapper's keys
    def configure_optimizers(self) -> Any:
        return configure_optimizers(self, self.paramwise_config)

    def configure_callbacks(self) -> list[pl.Callback]:
        return [ParamwiseCallback(self.paramwise_config)]


def main(args: list[str] | None = None, **kwargs: Any) -> LightningCLI:
    """Run the CLI (``args`` as on the command line; None reads ``sys.argv``)."""
    return LightningCLI(TinyRegressor, args=args, **kwargs)


if __name__ == "__main__":
    main()
