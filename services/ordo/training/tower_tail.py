"""The image tower's last blocks, trainable on cached activations (``ordo finetune --unfreeze-last N``).

Why cached activations: the frozen front of the tower then runs once per image, not once per step; each step
still costs ~13x a heads-only step for N=1 (~35x for N=3) on a CPU. The text tower stays frozen.
"""

from __future__ import annotations

import copy
from typing import cast

import numpy as np
import torch

from ordo.embedding import ordo_lite
from ordo.errors import InvalidInput, Reason

MAX_UNFREEZE = 5  # blocks 16-20 all take 208x9x9 inputs: the float16 cache stays ~34 kB per image
TOWER_TAIL_FILE = ordo_lite.TOWER_TAIL_FILE


def check_unfreeze(unfreeze: int) -> None:
    if not 0 <= unfreeze <= MAX_UNFREEZE:
        raise InvalidInput(f"--unfreeze-last must be between 0 and {MAX_UNFREEZE}", reason=Reason.BAD_UNFREEZE)


class TowerTail(torch.nn.Module):
    """The image tower's last ``n`` blocks plus its head convolution, trainable, on cached activations.

    Batch norms keep their ImageNet running statistics (eval mode, as in the frozen tower); their affine
    parameters and the convolutions train. Drop-connect stays off: the batches are small and the data few.
    """

    def __init__(self, tower: torch.nn.Module, n: int) -> None:
        super().__init__()

        check_unfreeze(n)
        blocks = tower_blocks(tower)
        self.first = len(blocks) - n
        self.blocks = torch.nn.ModuleList(copy.deepcopy(list(blocks[self.first :])))
        self.conv_head = copy.deepcopy(tower_part(tower, "_conv_head"))
        self.bn1 = copy.deepcopy(tower_part(tower, "_bn1"))
        self.swish = tower_part(tower, "_swish")
        self.eval()

    def train(self, mode: bool = True) -> TowerTail:
        return super().train(False)  # BN statistics stay frozen

    def forward(self, activations: torch.Tensor) -> torch.Tensor:
        x = activations.float()
        for block in self.blocks:
            x = block(x)
        return self.swish(self.bn1(self.conv_head(x))).mean(dim=(2, 3))

    def features(self, activations: np.ndarray, batch: int = 256) -> np.ndarray:
        with torch.no_grad():
            parts = [self(torch.from_numpy(activations[i : i + batch])) for i in range(0, len(activations), batch)]
        return torch.cat(parts).numpy()

    def tower_state(self) -> dict[str, torch.Tensor]:
        """The tail's tensors under the full tower's names (``_blocks.20.…``, ``_conv_head.…``, ``_bn1.…``)."""
        state = {}
        for name, tensor in self.state_dict().items():
            if name.startswith("blocks."):
                index, rest = name.removeprefix("blocks.").split(".", 1)
                state[f"_blocks.{self.first + int(index)}.{rest}"] = tensor
            elif name.startswith("conv_head.") or name.startswith("bn1."):
                state[f"_{name}"] = tensor
        return {k: v.detach().contiguous() for k, v in state.items()}


def tower_part(tower: torch.nn.Module, name: str) -> torch.nn.Module:
    """A named part of the EfficientNet-Lite tower (``_blocks``, ``_conv_stem``, ``_bn0``, ``_swish``, ...).

    ``efficientnet_lite_pytorch`` keeps them as private attributes, which ``torch.nn.Module.__getattr__``
    types as ``Tensor | Module``; they are modules.
    """
    return cast(torch.nn.Module, getattr(tower, name))


def tower_blocks(tower: torch.nn.Module) -> torch.nn.ModuleList:
    """The tower's blocks, in order (see :func:`tower_part`)."""
    return cast(torch.nn.ModuleList, tower_part(tower, "_blocks"))
