r"""Image quality metrics that minimise over the trivial ambiguities of phase retrieval.

Fourier intensities ``|F x|^2`` do not change under

* a **global phase** ``x -> e^{i phi} x`` (for real images: a sign flip ``x -> -x``);
* a **translation** ``x(r) -> x(r - s)`` (exactly for circular shifts on the padded grid;
  an object with a zero border can also move inside its frame);
* **conjugate inversion** (the twin image) ``x(r) -> conj(x(-r))``, here the flip of the
  frame ``x[i, j] -> conj(x[H-1-i, W-1-j])`` (any extra offset is a translation).

:func:`align` returns the member of the orbit of ``x_hat`` under the enabled ambiguities that
is closest in the Euclidean norm to ``x_true``: for each candidate (``x_hat`` and its twin)
the cross-correlation ``c(s) = sum_r conj(x_true(r)) x_hat(r + s)`` over every integer shift
``s`` is computed by FFT, the squared error
``||x_true||^2 + ||shifted x_hat||^2 - 2 |c(s)|`` (``|Re c|`` for real images, ``Re c``
without the phase ambiguity) is minimised exactly over shifts and the continuous phase, and
the winner is applied.  Linear shifts fill with zeros (content shifted out of the frame is
lost and counted in the energy term); ``circular=True`` uses periodic shifts instead.

Hence :func:`nrmse` is the exact minimum over the ambiguities and :func:`psnr` the exact
maximum (for a fixed data range); :func:`ssim` is evaluated at the MSE-optimal alignment
(not separately maximised).  Subpixel translations are not searched.

Shapes: ``x_hat`` ``(batch, C, H, W)``, ``x_true`` ``(batch or 1, C, H, W)``, real or complex.
All metrics return ``(batch,)`` float64 tensors.
"""

from __future__ import annotations

import torch

__all__ = ["align", "nrmse", "psnr", "ssim", "ssim_plain"]


def _check_pair(x_hat: torch.Tensor, x_true: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, t in (("x_hat", x_hat), ("x_true", x_true)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            raise ValueError(f"{name}: expected a (batch, C, H, W) tensor")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: contains NaN or Inf")
    if x_true.shape[1:] != x_hat.shape[1:] or x_true.shape[0] not in (1, x_hat.shape[0]):
        raise ValueError(
            f"x_true: expected shape (1 or {x_hat.shape[0]}, "
            f"{', '.join(map(str, x_hat.shape[1:]))}), got {tuple(x_true.shape)}"
        )
    dtype = torch.promote_types(x_hat.dtype, x_true.dtype)
    dtype = torch.promote_types(dtype, torch.float64)
    x_true = x_true.to(dtype).expand_as(x_hat.to(dtype))
    return x_hat.to(dtype), x_true


def _twin(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=(-2, -1)).conj()


def _correlations(cand: torch.Tensor, ref: torch.Tensor, circular: bool):
    """``c(s)`` and ``||shifted cand||^2`` for every shift, on the shift grid.

    Returns tensors of shape ``(batch, Sh, Sw)`` indexed by ``s mod (Sh, Sw)``.
    """
    h, w = cand.shape[-2:]
    sh, sw = (h, w) if circular else (2 * h, 2 * w)
    fc = torch.fft.fft2(cand, s=(sh, sw))
    fr = torch.fft.fft2(ref, s=(sh, sw))
    corr = torch.fft.ifft2(fr.conj() * fc).sum(1)  # sum over channels
    energy = (cand.abs() ** 2).sum(1)
    if circular:
        shifted = energy.sum((-2, -1))[:, None, None].expand(-1, sh, sw)
    else:
        frame = torch.ones(h, w, dtype=energy.dtype, device=energy.device)
        ff = torch.fft.fft2(frame, s=(sh, sw))
        shifted = torch.fft.ifft2(ff.conj()[None] * torch.fft.fft2(energy, s=(sh, sw))).real
    if not cand.is_complex() and not ref.is_complex():
        corr = corr.real
    return corr, shifted


def _shift(x: torch.Tensor, s: tuple[int, int], circular: bool) -> torch.Tensor:
    """``out(r) = x(r + s)`` for one item ``(C, H, W)``, zero fill unless circular."""
    h, w = x.shape[-2:]
    if circular:
        return torch.roll(x, shifts=(-s[0], -s[1]), dims=(-2, -1))
    canvas = torch.nn.functional.pad(x, (0, w, 0, h))
    return torch.roll(canvas, shifts=(-s[0], -s[1]), dims=(-2, -1))[..., :h, :w]


def align(
    x_hat: torch.Tensor,
    x_true: torch.Tensor,
    *,
    global_phase: bool = True,
    translation: bool = True,
    twin: bool = True,
    circular: bool = False,
) -> torch.Tensor:
    """Apply the ambiguity transformation that brings ``x_hat`` closest to ``x_true``.

    Parameters
    ----------
    x_hat : torch.Tensor
        ``(batch, C, H, W)`` reconstructions, real or complex.
    x_true : torch.Tensor
        ``(1 or batch, C, H, W)`` reference.
    global_phase, translation, twin : bool
        Which ambiguities to remove (all by default; ptychography with a known probe has
        only the global phase).
    circular : bool
        Periodic shifts (objects defined on the whole padded grid) instead of zero-filled
        linear shifts.

    Returns
    -------
    torch.Tensor
        Aligned ``x_hat`` of the promoted dtype (at least float64), shape of ``x_hat``.
    """
    x_hat, x_true = _check_pair(x_hat, x_true)
    cands = [x_hat, _twin(x_hat)] if twin else [x_hat]
    ref_energy = (x_true.abs() ** 2).sum((1, 2, 3))
    best_err, best = None, None
    for k, cand in enumerate(cands):
        corr, shifted = _correlations(cand, x_true, circular)
        if not translation:
            corr, shifted = corr[:, :1, :1], shifted[:, :1, :1]
        gain = corr.abs() if global_phase else corr.real
        err = ref_energy[:, None, None] + shifted - 2 * gain
        flat = err.reshape(err.shape[0], -1)
        e, idx = flat.min(dim=1)
        if best_err is None:
            best_err, best = e, [(0, int(i)) for i in idx]
        else:
            better = e < best_err - 1e-12 * ref_energy
            best = [(k, int(i)) if bool(better[b]) else best[b] for b, i in enumerate(idx)]
            best_err = torch.where(better, e, best_err)
        cands[k] = (cand, corr)
    out = []
    for b, (k, i) in enumerate(best):
        cand, corr = cands[k]
        sw = corr.shape[-1]
        si, sj = divmod(i, sw)
        h, w = x_hat.shape[-2:]
        s = (si, sj) if circular else (si if si < h else si - 2 * h, sj if sj < w else sj - 2 * w)
        c = corr[b, si, sj]
        item = _shift(cand[b], s, circular)
        if global_phase:
            mag = c.abs()
            phase = c.conj() / mag if float(mag) > 0 else torch.ones_like(c)
            # real images: phase is +-1 and keeps them real
            item = item * (phase.real if not item.is_complex() else phase)
        out.append(item)
    return torch.stack(out)


def nrmse(x_hat: torch.Tensor, x_true: torch.Tensor, **ambiguities: bool) -> torch.Tensor:
    """``min ||T(x_hat) - x_true|| / ||x_true||`` over the ambiguities ``T``, per item."""
    x_hat, x_true = _check_pair(x_hat, x_true)
    a = align(x_hat, x_true, **ambiguities)
    num = ((a - x_true).abs() ** 2).sum((1, 2, 3)).sqrt()
    den = (x_true.abs() ** 2).sum((1, 2, 3)).sqrt().clamp(min=1e-300)
    return (num / den).to(torch.float64)


def _data_range(x_true: torch.Tensor, data_range: float | None) -> torch.Tensor:
    if data_range is not None:
        if not data_range > 0:
            raise ValueError(f"data_range: expected a positive number, got {data_range!r}")
        return torch.full((x_true.shape[0],), float(data_range), dtype=torch.float64,
                          device=x_true.device)
    t = x_true.abs() if x_true.is_complex() else x_true
    flat = t.reshape(t.shape[0], -1).to(torch.float64)
    return (flat.max(1).values - flat.min(1).values).clamp(min=1e-300)


def psnr(
    x_hat: torch.Tensor,
    x_true: torch.Tensor,
    data_range: float | None = None,
    **ambiguities: bool,
) -> torch.Tensor:
    """``max 10 log10(range^2 / mean |T(x_hat) - x_true|^2)`` over the ambiguities, in dB.

    ``data_range`` defaults to ``max - min`` of ``x_true`` (of ``|x_true|`` if complex), per
    item.  A perfect match gives ``inf``.
    """
    x_hat, x_true = _check_pair(x_hat, x_true)
    a = align(x_hat, x_true, **ambiguities)
    mse = ((a - x_true).abs() ** 2).reshape(a.shape[0], -1).mean(1).to(torch.float64)
    rng = _data_range(x_true, data_range)
    return 10.0 * torch.log10(rng**2 / mse)


def _gaussian_kernel(sigma: float, truncate: float, dtype, device) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def ssim_plain(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: torch.Tensor | float,
    sigma: float = 1.5,
    truncate: float = 3.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """SSIM (Wang et al. 2004) of real images, no alignment, per item ``(batch,)``.

    Gaussian window (``sigma`` 1.5 pixels, truncated at 3.5 sigma), population
    covariances, mean over the pixels whose window lies inside the image and over channels;
    equal to ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    use_sample_covariance=False, data_range=...)``.
    """
    x, y = x.to(torch.float64), y.to(torch.float64)
    k = _gaussian_kernel(sigma, truncate, x.dtype, x.device)
    r = (k.numel() - 1) // 2
    if min(x.shape[-2:]) <= 2 * r:
        raise ValueError(
            f"x: SSIM needs images larger than {2 * r + 1} pixels, got {tuple(x.shape[-2:])}"
        )
    b, c = x.shape[:2]

    def filt(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(b * c, 1, *t.shape[-2:])
        t = torch.nn.functional.conv2d(t, k.reshape(1, 1, -1, 1))
        t = torch.nn.functional.conv2d(t, k.reshape(1, 1, 1, -1))
        return t.reshape(b, c, *t.shape[-2:])

    rng = torch.as_tensor(data_range, dtype=torch.float64, device=x.device).reshape(-1, 1, 1, 1)
    c1, c2 = (k1 * rng) ** 2, (k2 * rng) ** 2
    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx**2
    vy = filt(y * y) - my**2
    cxy = filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean((1, 2, 3))


def ssim(
    x_hat: torch.Tensor,
    x_true: torch.Tensor,
    data_range: float | None = None,
    **ambiguities: bool,
) -> torch.Tensor:
    """SSIM at the MSE-optimal alignment (see the module docstring), per item.

    Complex images are compared through their moduli ``|x|``; ``data_range`` defaults to
    ``max - min`` of the (modulus of the) reference.
    """
    x_hat, x_true = _check_pair(x_hat, x_true)
    a = align(x_hat, x_true, **ambiguities)
    if a.is_complex() or x_true.is_complex():
        a, ref = a.abs(), x_true.abs()
    else:
        ref = x_true
    return ssim_plain(a, ref, _data_range(x_true, data_range))

