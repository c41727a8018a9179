"""StreetNet: a compact bottom-up panoptic network (Panoptic-DeepLab style) for CPU real time.

    image (B, 3, H, W) float, normalised
      └─ encoder: plain 3x3 conv + BN + ReLU stages at strides 2, 4, 8, 16, 32
         (residual blocks; dilated blocks at /16; global-context pooling at /32)
      └─ decoder: FPN-like top-down path to stride 4 (one shared feature map)
      └─ heads at stride 4:
           semantic logits   (B, K, H/4, W/4)     K = len(classes)
           center heatmap    (B, 1, H/4, W/4)     regressed Gaussian (peak 1) at each thing's center
           center offsets    (B, 2, H/4, W/4)     (dy, dx) from each pixel to its thing's center,
                                                  in output-grid pixels

Grouping and fusion of these outputs into a panoptic id map live in
`vpanoptic.models.street.grouping` (pure torch functions, on the model's device).

Why this shape: on a CPU, plain dense 3x3 convolutions with few channels run at a far
higher fraction of peak than depthwise-separable ones (which are memory bound), and the
synthetic street world needs context (sky / building / road layout) more than capacity, so a
narrow, deep-strided encoder with a cheap top-down decoder gives the best quality per
millisecond (README, "The default model").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["StreetNet", "StreetNetConfig", "fold_batchnorm"]


@dataclass(frozen=True)
class StreetNetConfig:
    """Widths of the network (stored in every checkpoint, so a checkpoint rebuilds its own net).

    widths: channels at strides 2, 4, 8, 16, 32.
    blocks: residual blocks at strides 8, 16, 32.
    decoder: channels of the top-down path at stride 8 and at stride 4 (the heads' input).
    num_classes: semantic classes predicted (the model's own class list, see the checkpoint).
    """

    widths: tuple[int, int, int, int, int] = (24, 32, 64, 96, 128)
    blocks: tuple[int, int, int] = (2, 2, 1)
    decoder: tuple[int, int] = (64, 48)
    num_classes: int = 8

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> StreetNetConfig:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)


def conv_bn(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 conv (no bias) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut (ResNet basic block)."""

    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        self.conv1 = conv_bn(channels, channels, dilation=dilation)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2: nn.Module = nn.BatchNorm2d(channels)  # nn.Identity once folded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.bn2(self.conv2(self.conv1(x))), inplace=True)


def _stage(cin: int, cout: int, blocks: int, dilations: tuple[int, ...] = (1,)) -> nn.Sequential:
    layers: list[nn.Module] = [conv_bn(cin, cout, stride=2)]
    layers += [ResBlock(cout, dilations[i % len(dilations)]) for i in range(blocks)]
    return nn.Sequential(*layers)


class StreetNet(nn.Module):
    """The network; `forward` returns ``(semantic, center, offset)`` logits at stride 4.

    Input ``(B, 3, H, W)`` float32 (normalised RGB), any H, W (inputs are padded to a
    multiple of 32 inside and the outputs cropped back to ``ceil(H/4), ceil(W/4)``).
    """

    STRIDE = 4
    PAD_TO = 32

    def __init__(self, config: StreetNetConfig = StreetNetConfig()):
        super().__init__()
        self.config = config
        w2, w4, w8, w16, w32 = config.widths
        b8, b16, b32 = config.blocks
        d8, d4 = config.decoder
        self.stem = conv_bn(3, w2, stride=2)
        self.s4 = nn.Sequential(conv_bn(w2, w4, stride=2), conv_bn(w4, w4))
        self.s8 = _stage(w4, w8, b8)
        self.s16 = _stage(w8, w16, b16, dilations=(1, 2))
        self.s32 = _stage(w16, w32, b32)
        self.context = nn.Sequential(nn.Conv2d(w32, w32, 1, bias=False), nn.BatchNorm2d(w32), nn.ReLU(inplace=True))
        self.lat16 = nn.Conv2d(w16, w32, 1)
        self.top16 = conv_bn(w32, d8)
        self.lat8 = nn.Conv2d(w8, d8, 1)
        self.top8 = conv_bn(d8, d8)
        self.lat4 = nn.Conv2d(w4, d4, 1)
        self.reduce8 = nn.Conv2d(d8, d4, 1)
        self.top4 = conv_bn(d4, d4)
        self.sem_head = nn.Sequential(conv_bn(d4, d4), nn.Conv2d(d4, config.num_classes, 1))
        self.inst_head = nn.Sequential(conv_bn(d4, d4), nn.Conv2d(d4, 3, 1))
        self._init_heads()

    def _init_heads(self) -> None:
        # Most cells are no center and have no offset: start the regressions at zero.
        last = self.inst_head[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.normal_(last.weight, std=1e-3)
        nn.init.constant_(last.bias, 0.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` → semantic ``(B, K, h, w)``, center ``(B, 1, h, w)``, offset ``(B, 2, h, w)``.

        ``h, w = ceil(H / 4), ceil(W / 4)``; offsets are (dy, dx) in output-grid pixels.
        """
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.PAD_TO, (-w) % self.PAD_TO
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        f32 = f32 + self.context(f32.mean((2, 3), keepdim=True))
        p16 = self.top16(self.lat16(f16) + F.interpolate(f32, size=f16.shape[-2:], mode="nearest"))
        p8 = self.top8(self.lat8(f8) + F.interpolate(p16, size=f8.shape[-2:], mode="bilinear", align_corners=False))
        p4 = self.top4(
            self.lat4(f4) + F.interpolate(self.reduce8(p8), size=f4.shape[-2:], mode="bilinear", align_corners=False)
        )
        sem = self.sem_head(p4)
        inst = self.inst_head(p4)
        oh, ow = -(-h // self.STRIDE), -(-w // self.STRIDE)
        sem = sem[..., :oh, :ow]
        inst = inst[..., :oh, :ow]
        return sem, inst[:, :1], inst[:, 1:]


def fold_batchnorm(net: StreetNet) -> StreetNet:
    """An inference copy of `net` with every BatchNorm folded into the convolution before it.

    ``bn(conv(x)) = conv'(x)`` with ``w' = w * g / sqrt(v + eps)`` and
    ``b' = (b - m) * g / sqrt(v + eps) + beta``; the copy is in eval mode and gives the same
    outputs up to float rounding (one op per layer fewer on the CPU).
    """
    import copy

    fused = copy.deepcopy(net).eval()

    def fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
        mean, var = bn.running_mean, bn.running_var
        assert mean is not None and var is not None, "BatchNorm without running statistics"
        scale = bn.weight / torch.sqrt(var + bn.eps)  # [C_out]
        out = copy.deepcopy(conv)  # same geometry, device and dtype
        with torch.no_grad():
            out.weight.mul_(scale[:, None, None, None])
            bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
            out.bias = nn.Parameter((bias - mean) * scale + bn.bias)
        return out

    for module in fused.modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                conv, bn = module[i], module[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module[i] = fold(conv, bn)
                    module[i + 1] = nn.Identity()
        if isinstance(module, ResBlock) and isinstance(module.bn2, nn.BatchNorm2d):
            module.conv2 = fold(module.conv2, module.bn2)
            module.bn2 = nn.Identity()
    return fused
