"""A compact UNet for denoising images of any channel count.

The network ``F(x_in, c_noise)`` maps a ``(batch, C, H, W)`` image and a ``(batch,)`` noise
conditioning to a ``(batch, C, H, W)`` output.  It is meant to be wrapped by the EDM
preconditioning of :mod:`diffinv.priors.edm` (Karras et al. 2022), which turns it into a
denoiser ``D(x, sigma)``.

Architecture (after Ho et al. 2020 and Dhariwal & Nichol 2021, scaled down): residual
blocks with group normalisation, SiLU and a FiLM-style (scale, shift) modulation by a
sinusoidal embedding of the noise level; average-pool downsampling, nearest upsampling and
skip connections; optional self-attention at the coarsest resolution.  About 0.7M
parameters with the defaults, which trains on a 2-core CPU at 32x32.

The network is fully convolutional: it accepts any height and width, square or not.  Sizes
that are not multiples of the downsampling factor ``2 ** (levels - 1)`` are padded
(reflection, replication for tiny images) on the bottom/right to the next multiple and the
output is cropped back, so a network trained on crops runs on whole images.  Attention is
global over the coarsest grid by default (as in the checkpoints trained at 32x32); with
``attention_window = k`` it is computed in non-overlapping ``k x k`` windows of that grid,
so its receptive field and cost per pixel do not grow with the image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import nn

__all__ = ["UNetConfig", "UNet", "noise_embedding", "run_padded"]


@dataclass
class UNetConfig:
    """Hyper-parameters of :class:`UNet` (stored in checkpoints).

    Attributes
    ----------
    channels : int
        Image channels (1 for real images, 2 for complex images as (real, imag)).
    base_width : int
        Feature channels at full resolution.
    width_mults : tuple of int
        Width multiplier per resolution level; the image is halved between levels (other
        sizes than multiples of ``2 ** (len(width_mults) - 1)`` are padded internally).
    blocks_per_level : int
        Residual blocks per level on the way down (one more on the way up).
    attention : bool
        Self-attention at the coarsest level.
    emb_dim : int
        Width of the noise embedding.
    dropout : float
        Dropout probability inside residual blocks.
    attention_window : int
        0 (default): global attention over the whole coarsest grid.  ``k > 0``: attention
        within non-overlapping ``k x k`` windows of the coarsest grid (the grid is padded to
        a multiple of ``k`` by replication and the padding masked out of the keys).
    """

    channels: int = 1
    base_width: int = 16
    width_mults: tuple[int, ...] = field(default=(1, 2, 4))
    blocks_per_level: int = 1
    attention: bool = True
    emb_dim: int = 128
    dropout: float = 0.0
    attention_window: int = 0

    def to_dict(self) -> dict:
        """Plain ``dict`` (lists instead of tuples) for checkpoints and JSON."""
        d = asdict(self)
        d["width_mults"] = list(self.width_mults)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"config: unknown UNet settings {sorted(unknown)}")
        d = dict(d)
        if "width_mults" in d:
            d["width_mults"] = tuple(int(m) for m in d["width_mults"])
        return cls(**d)


def noise_embedding(c_noise: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of a ``(batch,)`` conditioning value -> ``(batch, dim)``.

    Frequencies are geometric between 1 and ``1 / max_period`` (Vaswani et al. 2017).
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=c_noise.device)
        / half
    )
    # EDM's c_noise = ln(sigma)/4 is of order 1; spread it over the embedding's periods
    arg = (c_noise.float() * 250.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)


def run_padded(fn, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``fn(x)`` for ``x`` (batch, C, H, W) padded on the bottom/right to multiples of
    ``multiple`` (reflection; replication for images too small to reflect), cropped back.

    Unpadded (``fn(x)`` itself) when ``H`` and ``W`` are already multiples.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return fn(x)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return fn(F.pad(x, (0, pw, 0, ph), mode=mode))[..., :h, :w]


def _groups(width: int) -> int:
    for g in (8, 4, 2, 1):
        if width % g == 0:
            return g
    return 1


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return (self.skip(x) + h) / math.sqrt(2.0)


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int = 1, window: int = 0):
        super().__init__()
        self.heads = heads
        self.window = int(window)
        self.norm = nn.GroupNorm(_groups(width), width)
        self.qkv = nn.Conv2d(width, 3 * width, 1)
        self.proj = nn.Conv2d(width, width, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def _attend(self, qkv: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``qkv`` (n, 3, heads, c/heads, tokens) -> (n, c, tokens); ``mask`` (n, tokens)."""
        q, k, v = qkv.unbind(1)
        logits = torch.einsum("bhci,bhcj->bhij", q, k) / math.sqrt(q.shape[2])
        if mask is not None:
            logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
        att = torch.softmax(logits, -1)
        out = torch.einsum("bhij,bhcj->bhci", att, v)
        return out.reshape(out.shape[0], -1, out.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x))
        k = self.window
        if k <= 0 or (h <= k and w <= k):
            out = self._attend(qkv.reshape(b, 3, self.heads, c // self.heads, h * w))
            return (x + self.proj(out.reshape(b, c, h, w))) / math.sqrt(2.0)
        ph, pw = -h % k, -w % k
        qkv = F.pad(qkv, (0, pw, 0, ph), mode="replicate")
        valid = F.pad(torch.ones(1, 1, h, w, device=x.device), (0, pw, 0, ph)) > 0
        nh, nw = (h + ph) // k, (w + pw) // k

        def windows(t: torch.Tensor) -> torch.Tensor:  # (b, ch, H, W) -> (b*nh*nw, ch, k*k)
            t = t.reshape(t.shape[0], t.shape[1], nh, k, nw, k).permute(0, 2, 4, 1, 3, 5)
            return t.reshape(-1, t.shape[3], k * k)

        tokens = windows(qkv).reshape(-1, 3, self.heads, c // self.heads, k * k)
        mask = windows(valid.expand(b, 1, -1, -1))[:, 0]
        out = self._attend(tokens, mask)  # (b*nh*nw, c, k*k)
        out = out.reshape(b, nh, nw, c, k, k).permute(0, 3, 1, 4, 2, 5)
        out = out.reshape(b, c, nh * k, nw * k)[:, :, :h, :w]
        return (x + self.proj(out)) / math.sqrt(2.0)


class UNet(nn.Module):
    """Compact UNet ``F(x, c_noise)``; see the module docstring.

    Parameters
    ----------
    config : UNetConfig
        Hyper-parameters; ``UNet(UNetConfig(channels=2))`` for complex images.

    Shapes
    ------
    ``x`` (batch, channels, H, W) float, ``c_noise`` (batch,) -> (batch, channels, H, W).
    """

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        cfg = config or UNetConfig()
        if cfg.channels < 1:
            raise ValueError(f"config.channels: expected >= 1, got {cfg.channels}")
        if cfg.attention_window < 0:
            raise ValueError(f"config.attention_window: expected >= 0, got "
                             f"{cfg.attention_window}")
        self.config = cfg
        emb = cfg.emb_dim
        self.emb_mlp = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        widths = [cfg.base_width * m for m in cfg.width_mults]
        self.stem = nn.Conv2d(cfg.channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        skips = [widths[0]]
        cur = widths[0]
        for level, w in enumerate(widths):
            for _ in range(cfg.blocks_per_level):
                self.down.append(_ResBlock(cur, w, emb, cfg.dropout))
                cur = w
                skips.append(cur)
            if level < len(widths) - 1:
                self.down.append(nn.AvgPool2d(2))
                skips.append(cur)
        self.mid1 = _ResBlock(cur, cur, emb, cfg.dropout)
        self.mid_att = (_Attention(cur, window=cfg.attention_window) if cfg.attention
                        else nn.Identity())
        self.mid2 = _ResBlock(cur, cur, emb, cfg.dropout)
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            w = widths[level]
            for _ in range(cfg.blocks_per_level + 1):
                self.up.append(_ResBlock(cur + skips.pop(), w, emb, cfg.dropout))
                cur = w
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.out_norm = nn.GroupNorm(_groups(cur), cur)
        self.out_conv = nn.Conv2d(cur, cfg.channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    @property
    def downsampling(self) -> int:
        """Total downsampling factor; other sizes are padded to a multiple internally."""
        return 2 ** (len(self.config.width_mults) - 1)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.channels:
            raise ValueError(
                f"x: expected (batch, {self.config.channels}, H, W), got {tuple(x.shape)}"
            )
        return run_padded(lambda v: self._forward(v, c_noise), x, self.downsampling)

    def _forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        emb = self.emb_mlp(noise_embedding(c_noise.reshape(-1).expand(x.shape[0]),
                                           self.config.emb_dim)).to(x.dtype)
        h = self.stem(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, _ResBlock) else layer(h)
            hs.append(h)
        h = self.mid2(self.mid_att(self.mid1(h, emb)), emb)
        for layer in self.up:
            if isinstance(layer, _ResBlock):
                h = layer(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = layer(h)
        return self.out_conv(F.silu(self.out_norm(h)))
