"""Restormer (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration",
CVPR 2022), written from the paper, with parameter names that match the released checkpoints.

The network is a 4-level U-Net of transformer blocks. Each block is

* **MDTA** (multi-Dconv head transposed attention): queries, keys and values from a 1x1 conv
  followed by a 3x3 depth-wise conv; attention is computed *across channels* (a ``C/h x C/h``
  map per head, linear in the number of pixels) on L2-normalised q and k, scaled by a learned
  per-head temperature;
* **GDFN** (gated-Dconv feed-forward network): 1x1 conv to two ``hidden`` halves, 3x3 depth-wise
  conv, ``GELU(a) * b``, 1x1 conv back;

each preceded by a layer norm over channels (``WithBias`` subtracts the mean and has a bias,
``BiasFree`` only rescales). Down-sampling is a 3x3 conv halving the channels then pixel-unshuffle;
up-sampling a 3x3 conv doubling them then pixel-shuffle. The decoder concatenates the encoder's
features (reduced by a 1x1 conv at levels 3 and 2, not at level 1), a refinement stage follows, and
a 3x3 conv predicts a residual added to the input (dual-pixel defocus models take two views and add
a skip convolution of the embedded input instead).

:func:`restormer_from_state_dict` reads the architecture off a checkpoint's keys and shapes, so the
released motion-deblurring, deraining, defocus and denoising checkpoints all load with ``strict=True``.
:func:`restore_image` pads (reflect) to a multiple of 8 and runs overlapping tiles, blending them with
a feathered window, for frames that do not fit in memory (Restormer costs ~2.2 TMAC on a 720p frame).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from edgerestore.errors import CheckpointError, InputNotFoundError
from edgerestore.models.checkpoint import describe_state_mismatch

MULTIPLE = 8  # three 2x down-samplings


@dataclass(frozen=True)
class RestormerConfig:
    """The constructor arguments of the original implementation (same names, same defaults)."""

    inp_channels: int = 3
    out_channels: int = 3
    dim: int = 48
    num_blocks: Tuple[int, int, int, int] = (4, 6, 6, 8)
    num_refinement_blocks: int = 4
    heads: Tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.66
    bias: bool = False
    LayerNorm_type: str = "WithBias"  # noqa: N815 - the original's spelling, so configs copy over
    dual_pixel_task: bool = False

    def __post_init__(self):
        object.__setattr__(self, "num_blocks", tuple(int(b) for b in self.num_blocks))
        object.__setattr__(self, "heads", tuple(int(h) for h in self.heads))
        if len(self.num_blocks) != 4 or len(self.heads) != 4:
            raise ValueError("num_blocks and heads need 4 entries (one per level)")
        if self.LayerNorm_type not in ("WithBias", "BiasFree"):
            raise ValueError("LayerNorm_type must be WithBias or BiasFree, not %r" % self.LayerNorm_type)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["num_blocks"] = list(self.num_blocks)
        data["heads"] = list(self.heads)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> RestormerConfig:
        return cls(**data)


# --------------------------------------------------------------------------- building blocks


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channels of every pixel of an NCHW tensor (no transposes).

    The parameters sit in a ``body`` sub-module, as in the released checkpoints.
    """

    def __init__(self, channels: int, kind: str):
        super().__init__()
        self.body = _NormParams(channels, with_bias=(kind == "WithBias"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.var(dim=1, keepdim=True, unbiased=False)
        if self.body.bias is None:
            # BiasFree: rescale by the standard deviation but keep the mean (as the paper's code).
            return x / torch.sqrt(var + 1e-5) * self.body.weight.view(1, -1, 1, 1)
        mean = x.mean(dim=1, keepdim=True)
        normed = (x - mean) / torch.sqrt(var + 1e-5)
        return normed * self.body.weight.view(1, -1, 1, 1) + self.body.bias.view(1, -1, 1, 1)


class _NormParams(nn.Module):
    def __init__(self, channels: int, with_bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if with_bias else None


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention: channel-wise attention, cost linear in pixels."""

    def __init__(self, dim: int, heads: int, bias: bool):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q = F.normalize(q.reshape(n, self.heads, c // self.heads, h * w), dim=-1)
        k = F.normalize(k.reshape(n, self.heads, c // self.heads, h * w), dim=-1)
        v = v.reshape(n, self.heads, c // self.heads, h * w)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.temperature, dim=-1)
        return self.project_out((attn @ v).reshape(n, c, h, w))


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network."""

    def __init__(self, dim: int, expansion: float, bias: bool):
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, expansion: float, bias: bool, norm: str):
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim, norm)
        self.attn = MDTA(dim, heads, bias)
        self.norm2 = ChannelLayerNorm(dim, norm)
        self.ffn = GDFN(dim, expansion, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class _Embed(nn.Module):
    def __init__(self, channels: int, dim: int, bias: bool):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class _Resample(nn.Module):
    """3x3 conv then pixel-unshuffle (down: channels x2 overall) or pixel-shuffle (up: channels /2)."""

    def __init__(self, channels: int, down: bool):
        super().__init__()
        if down:
            self.body = nn.Sequential(nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))
        else:
            self.body = nn.Sequential(nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# --------------------------------------------------------------------------- the network


class Restormer(nn.Module):
    """Restormer; input and output float NCHW in ``[0, 1]``, H and W multiples of 8."""

    def __init__(self, config: Optional[RestormerConfig] = None):
        super().__init__()
        config = config or RestormerConfig()
        self.config = config
        d, b, h, e = config.dim, config.num_blocks, config.heads, config.ffn_expansion_factor

        def stage(dim: int, heads: int, count: int) -> nn.Sequential:
            return nn.Sequential(*[TransformerBlock(dim, heads, e, config.bias, config.LayerNorm_type)
                                   for _ in range(count)])

        self.patch_embed = _Embed(config.inp_channels, d, config.bias)
        self.encoder_level1 = stage(d, h[0], b[0])
        self.down1_2 = _Resample(d, down=True)
        self.encoder_level2 = stage(d * 2, h[1], b[1])
        self.down2_3 = _Resample(d * 2, down=True)
        self.encoder_level3 = stage(d * 4, h[2], b[2])
        self.down3_4 = _Resample(d * 4, down=True)
        self.latent = stage(d * 8, h[3], b[3])
        self.up4_3 = _Resample(d * 8, down=False)
        self.reduce_chan_level3 = nn.Conv2d(d * 8, d * 4, 1, bias=config.bias)
        self.decoder_level3 = stage(d * 4, h[2], b[2])
        self.up3_2 = _Resample(d * 4, down=False)
        self.reduce_chan_level2 = nn.Conv2d(d * 4, d * 2, 1, bias=config.bias)
        self.decoder_level2 = stage(d * 2, h[1], b[1])
        self.up2_1 = _Resample(d * 2, down=False)
        # Level 1 keeps the concatenated 2*dim channels (no reduction), as in the paper.
        self.decoder_level1 = stage(d * 2, h[0], b[0])
        self.refinement = stage(d * 2, h[0], config.num_refinement_blocks)
        if config.dual_pixel_task:
            self.skip_conv = nn.Conv2d(d, d * 2, 1, bias=config.bias)
        self.output = nn.Conv2d(d * 2, config.out_channels, 3, padding=1, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(restored, features)``: the features are the refinement stage's output (2*dim channels
        at full resolution), what feature distillation matches the student's features to."""
        embedded = self.patch_embed(x)
        enc1 = self.encoder_level1(embedded)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))
        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1))
        features = self.refinement(dec1)
        if self.config.dual_pixel_task:
            return self.output(features + self.skip_conv(embedded)), features
        return self.output(features) + x, features


def restormer(**kwargs) -> Restormer:
    """A Restormer from the original constructor's keyword arguments (a ``module:`` teacher factory:
    ``--teacher module:edgerestore.models.restormer:restormer`` with ``teacher.kwargs``)."""
    return Restormer(RestormerConfig(**kwargs))


# --------------------------------------------------------------------------- checkpoints


_LEVELS = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")


def _count_blocks(keys: Iterable[str], prefix: str) -> int:
    pattern = re.compile(r"^%s\.(\d+)\." % re.escape(prefix))
    indices = {int(m.group(1)) for m in map(pattern.match, keys) if m}
    return max(indices) + 1 if indices else 0


def _expansion_factor(dims_hidden: List[Tuple[int, int]]) -> float:
    """The shortest decimal ``f`` with ``int(dim * f) == hidden`` at every level."""
    low, high = 0.0, math.inf
    for dim, hidden in dims_hidden:
        low, high = max(low, hidden / dim), min(high, (hidden + 1) / dim)
    for digits in range(1, 7):
        step = 10.0 ** -digits
        candidate = round(math.ceil(low / step - 1e-9) * step, digits)
        if candidate < high and all(int(d * candidate) == hid for d, hid in dims_hidden):
            return candidate
    return low


def config_from_state_dict(state: dict) -> RestormerConfig:
    """Read the architecture off a Restormer state dict's keys and shapes."""
    shape = {k: tuple(v.shape) for k, v in state.items()}
    try:
        dim, inp_channels = shape["patch_embed.proj.weight"][:2]
        out_channels = shape["output.weight"][0]
        num_blocks = tuple(_count_blocks(shape, level) for level in _LEVELS)
        heads = tuple(shape["%s.0.attn.temperature" % level][0] for level in _LEVELS)
        dims_hidden = [(dim * 2 ** i, shape["%s.0.ffn.project_out.weight" % level][1])
                       for i, level in enumerate(_LEVELS)]
    except (KeyError, IndexError) as exc:
        raise CheckpointError("not a Restormer state dict: no %s" % exc) from exc
    if min(num_blocks) == 0:
        raise CheckpointError("not a Restormer state dict: a level has no transformer blocks")
    return RestormerConfig(
        inp_channels=inp_channels,
        out_channels=out_channels,
        dim=dim,
        num_blocks=num_blocks,
        num_refinement_blocks=_count_blocks(shape, "refinement"),
        heads=heads,
        ffn_expansion_factor=_expansion_factor(dims_hidden),
        bias="patch_embed.proj.bias" in shape,
        LayerNorm_type="WithBias" if "encoder_level1.0.norm1.body.bias" in shape else "BiasFree",
        dual_pixel_task="skip_conv.weight" in shape,
    )


def unwrap_state_dict(data) -> dict:
    """The state dict inside what ``torch.load`` returned: ``{'params': ...}`` (official),
    ``{'params_ema': ...}``, ``{'state_dict': ...}`` or a bare state dict; ``module.`` prefixes
    (DataParallel) are stripped."""
    if not isinstance(data, dict):
        raise CheckpointError("a Restormer checkpoint is a dict, not a %s" % type(data).__name__)
    for key in ("params", "params_ema", "state_dict", "model"):
        if key in data and isinstance(data[key], dict):
            data = data[key]
            break
    if not all(torch.is_tensor(v) for v in data.values()):
        raise CheckpointError("no tensors found in the checkpoint (keys: %s)" % ", ".join(sorted(data)[:5]))
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in data.items()}


def load_restormer(path, config: Optional[RestormerConfig] = None, device="cpu") -> Restormer:
    """Load a Restormer checkpoint (official format or bare state dict) with ``strict=True``.

    Without ``config`` the architecture is read off the checkpoint. A file of another
    architecture or a truncated file raises :class:`CheckpointError` naming the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError("Restormer weights %s do not exist" % path)
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            "cannot read Restormer weights %s (%s: %s) — is the file complete? download it again"
            % (path, type(exc).__name__, (str(exc).splitlines() or [""])[0])
        ) from exc
    if isinstance(data, dict) and data.get("format") == "edgerestore-student":
        raise CheckpointError(
            "%s is an edgerestore student checkpoint, not Restormer weights — use --teacher student:%s"
            % (path, path)
        )
    try:
        state = unwrap_state_dict(data)
        config = config or config_from_state_dict(state)
    except CheckpointError as exc:
        raise CheckpointError("%s: %s" % (path, exc)) from exc
    model = Restormer(config)
    mismatch = describe_state_mismatch(model, state)
    if mismatch:
        raise CheckpointError("%s does not match Restormer(%s): %s" % (path, _short(config), mismatch))
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def _short(config: RestormerConfig) -> str:
    return "dim=%d, blocks=%s" % (config.dim, list(config.num_blocks))


# --------------------------------------------------------------------------- inference


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Reflect-pad the bottom/right of NCHW ``x`` to a multiple; returns ``(padded, (h, w))``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # reflect needs pad < size; replicate covers the tiny frames where it is not.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def _starts(size: int, tile: int, step: int) -> List[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def _ramp(n: int, overlap: int, start_inside: bool, end_inside: bool, device) -> torch.Tensor:
    """1-D blending weights of a tile: on sides inside the frame, zero for the outermost quarter
    of the overlap (where the tile's own padding spoils the output), then rising linearly."""
    r = torch.ones(n, device=device)
    if overlap <= 0:
        return r
    margin = overlap // 4
    d = torch.arange(n, device=device, dtype=torch.float32)
    rise = ((d - margin + 1) / (overlap - margin + 1)).clamp(0.0, 1.0)
    if start_inside:
        r = torch.minimum(r, rise)
    if end_inside:
        r = torch.minimum(r, rise.flip(0))
    return r


@torch.no_grad()
def restore_image(model: nn.Module, x: torch.Tensor, tile: Optional[int] = None, overlap: int = 32,
                  multiple: int = MULTIPLE) -> torch.Tensor:
    """Run ``model`` on NCHW float ``x``: reflect-pad to ``multiple``, optionally in ``tile``-sized
    tiles overlapping by ``overlap`` pixels (blended with a feathered window), crop back.

    For a model whose receptive field reaches less than ``overlap // 4`` pixels, tiled and whole
    results are the same; Restormer's channel attention is global, so its tiles differ slightly.
    """
    padded, (h, w) = pad_to_multiple(x, multiple)
    H, W = padded.shape[-2:]
    if tile is None or (H <= tile and W <= tile):
        return model(padded)[..., :h, :w]
    tile = max(multiple, tile - tile % multiple)
    overlap = min(overlap, tile // 2)
    step = max(multiple, tile - overlap)
    out = None
    weight = torch.zeros(1, 1, H, W, device=x.device)
    for top in _starts(H, tile, step):
        for left in _starts(W, tile, step):
            piece = model(padded[..., top:top + tile, left:left + tile])
            ph, pw = piece.shape[-2:]
            win = (_ramp(ph, overlap, top > 0, top + ph < H, x.device)[:, None]
                   * _ramp(pw, overlap, left > 0, left + pw < W, x.device)[None, :])
            if out is None:
                out = torch.zeros(x.shape[0], piece.shape[1], H, W, device=x.device, dtype=piece.dtype)
            out[..., top:top + ph, left:left + pw] += piece * win
            weight[..., top:top + ph, left:left + pw] += win
    return (out / weight)[..., :h, :w]


__all__ = [
    "Restormer", "RestormerConfig", "restormer", "config_from_state_dict", "load_restormer", "unwrap_state_dict",
    "restore_image", "pad_to_multiple",
]
