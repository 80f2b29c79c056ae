"""Training of the MRI gland segmenter on real T2: PROMISE12 cases + Yale subject 1.

Every case is reoriented to the canonical LPS-ordered axial grid and normalised exactly as at inference
(:func:`inference.segmentation.canonical_normalise`). A batch draws a case uniformly (so Yale's 79 thin
slices weigh as one case), then one kept slice (the paper drops the top/bottom 10%), and samples it onto
the network window in millimetres with a random in-plane rotation, isotropic scale (the PROMISE12
spacing is assumed, and real fields of view vary), small anisotropy, left/right flip (the gland is
left/right symmetric; anterior/posterior is not, so it is never flipped) and shift. Intensities then get
gamma, contrast, a smooth multiplicative bias field (endorectal and surface coils), blur (coarser
acquisitions) and noise. Loss: batch soft Dice + BCE; AdamW with a cosine learning-rate decay.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from numpy.typing import NDArray
from torch import nn

from inference.datasets import promise12_load, shared_data_dir
from inference.io import label_load, volume_load
from inference.models import device_pick, model_build
from inference.seg_canonical import canonical_view, to_canonical, window_sample
from inference.segmentation import canonical_normalise

__all__ = [
    "YALE_NAME",
    "RealCase",
    "augment_batch",
    "inference_preprocessing",
    "real_cases",
    "train_model",
]

YALE_NAME = "yale1"


@dataclass
class RealCase:
    """One training/evaluation volume.

    ``image``/``label``/``affine``: the original grid (evaluation); ``norm``/``mask`` ``(X, Y, Z)`` on
    the canonical grid (normalised image, uint8 gland), ``spacing`` its in-plane mm, ``keep`` the
    slices training draws from.
    """

    name: str
    image: NDArray[np.float32]
    label: NDArray[np.uint8]
    affine: NDArray[np.float64]
    norm: NDArray[np.float32]
    mask: NDArray[np.uint8]
    spacing: tuple[float, float]
    keep: slice


def inference_preprocessing(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``preprocessing`` block a checkpoint carries (what :mod:`inference.segmentation` reads)."""
    p = cfg["preprocessing"]
    return {
        "canonical": "LPS",
        "spacing_mm": float(p["spacing_mm"]),
        "size": [int(p["size"][0]), int(p["size"][1])],
        "drop": [float(v) for v in p["infer_drop"]],
        "percentiles": [float(v) for v in p["percentiles"]],
        "enhance": list(p.get("enhance") or []),
        "tta_flip": bool(p.get("tta_flip", True)),
        "threshold": float(p.get("threshold", 0.5)),
    }


def _case(name: str, image: NDArray[np.float32], label: NDArray[np.uint8], affine: Any, prep: dict[str, Any], drop: Any) -> RealCase:  # fmt: skip
    view = canonical_view(affine)
    canon = np.ascontiguousarray(to_canonical(image, view), dtype=np.float32)
    mask = np.ascontiguousarray(to_canonical(label, view), dtype=np.uint8)
    sp = (view.spacing[0], view.spacing[1])
    n = canon.shape[2]
    keep = slice(int(np.floor(n * drop[0])), n - int(np.floor(n * drop[1])))
    return RealCase(
        name=name,
        image=image,
        label=label,
        affine=np.asarray(affine, dtype=np.float64),
        norm=canonical_normalise(canon, sp, prep),
        mask=mask,
        spacing=sp,
        keep=keep,
    )


def real_cases(names: list[str], *, cfg: dict[str, Any], yale: bool) -> list[RealCase]:
    """Load PROMISE12 ``names`` (and Yale subject 1 when ``yale``) onto the canonical grid."""
    prep = inference_preprocessing(cfg)
    drop = cfg["preprocessing"]["train_drop"]
    out = []
    for n in names:
        c = promise12_load(n)
        out.append(_case(n, c.image, c.label, c.affine, prep, drop))
    if yale:
        root = shared_data_dir() / "yale-prostate-t2"
        img, aff = volume_load(root / "prostate_T2_1.nii.gz")
        lab, _ = label_load(root / "prostate_segm_1.nii.gz")
        out.append(_case(YALE_NAME, img, lab, aff, prep, drop))
    return out


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each of ``x (B, 1, H, W)`` by its own ``sigma (B,)`` pixels (separable, 7 taps)."""
    r = torch.arange(-3, 4, dtype=x.dtype)
    k = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    k = (k / k.sum(dim=1, keepdim=True))[:, None, None]  # (B, 1, 1, 7)
    b = x.shape[0]
    y = F.conv2d(F.pad(x.transpose(0, 1), (3, 3, 0, 0), mode="replicate"), k, groups=b)
    y = F.conv2d(F.pad(y, (0, 0, 3, 3), mode="replicate"), k.transpose(2, 3), groups=b)
    return y.transpose(0, 1)


def augment_batch(x: torch.Tensor, aug: dict[str, Any], gen: torch.Generator) -> torch.Tensor:
    """Intensity augmentation of ``x (B, 1, H, W)`` in [0, 1]; returns the same shape, clipped."""
    b, _, h, w = x.shape

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*(shape or (b,)), generator=gen)

    g_lo, g_hi = aug.get("gamma", (0.7, 1.5))
    gamma = torch.exp(u(math.log(g_lo), math.log(g_hi))).view(b, 1, 1, 1)
    x = x.clamp(0, 1) ** gamma
    con = float(aug.get("contrast", 0.25))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(1 - con, 1 + con).view(b, 1, 1, 1) + mean
    beta = float(aug.get("bias_field", 0.3))
    if beta > 0:
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        basis = torch.stack([xx, yy, xx * yy, xx**2, yy**2])  # (5, H, W): a smooth 2nd-order field
        field = torch.einsum("bk,khw->bhw", u(-beta, beta, b, 5), basis)
        x = x * torch.exp(field)[:, None]
    p_blur = float(aug.get("blur_p", 0.25))
    if p_blur > 0:
        blur = torch.rand(b, generator=gen) < p_blur
        if bool(blur.any()):
            xb = _gaussian_blur(x, u(0.3, 1.0))
            x = torch.where(blur.view(b, 1, 1, 1), xb, x)
    sd = u(0.0, float(aug.get("noise", 0.03))).view(b, 1, 1, 1)
    x = x + sd * torch.randn(x.shape, generator=gen)
    return x.clamp(0.0, 1.0)


def _geometry(b: int, aug: dict[str, Any], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Random ``matrix (B, 2, 2)`` (window mm -> source mm) and ``centre_mm (B, 2)``."""
    ang = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(float(aug["rotation_deg"]))
    sc = 1 + (torch.rand(b, generator=gen) * 2 - 1) * float(aug["scaling"])
    an = 1 + (torch.rand(b, 2, generator=gen) * 2 - 1) * float(aug.get("anisotropy", 0.05))
    flip = torch.rand(b, generator=gen) < float(aug.get("flip_lr", 0.5))
    rot = torch.stack(
        [torch.stack([ang.cos(), -ang.sin()], 1), torch.stack([ang.sin(), ang.cos()], 1)], 1
    )
    diag = torch.diag_embed(sc[:, None] * an)
    diag[:, 0, 0] = torch.where(flip, -diag[:, 0, 0], diag[:, 0, 0])  # H is right -> left
    centre = (torch.rand(b, 2, generator=gen) * 2 - 1) * float(aug.get("translation_mm", 15.0))
    return rot @ diag, centre


def _batch(
    cases: list[RealCase], bs: int, prep: dict[str, Any], aug: dict[str, Any], gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch ``(x (B, 1, H, W), y (B, 1, H, W))`` of augmented window slices."""
    hw = (int(prep["size"][0]), int(prep["size"][1]))
    s = float(prep["spacing_mm"])
    mats, centres = _geometry(bs, aug, gen)
    xs, ys = [], []
    for i in range(bs):
        c = cases[int(torch.randint(len(cases), (1,), generator=gen))]
        k = int(torch.randint(c.keep.start, c.keep.stop, (1,), generator=gen))
        pair = torch.from_numpy(
            np.stack([c.norm[:, :, k], c.mask[:, :, k].astype(np.float32)])[None]
        )
        win = window_sample(
            pair,
            src_spacing=c.spacing,
            dst_hw=hw,
            dst_spacing=(s, s),
            matrix=mats[i : i + 1],
            centre_mm=centres[i : i + 1],
        )
        xs.append(win[:, :1])
        ys.append((win[:, 1:] > 0.5).float())
    return augment_batch(torch.cat(xs), aug, gen), torch.cat(ys)


def _optimiser(
    model: nn.Module, *, lr: float, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with a linear warm-up over ~10% of the steps (at most 50), then a cosine decay to 5%."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warm = min(50, max(steps // 10, 1))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda t: (
            min(1.0, (t + 1) / warm)
            * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t / max(steps, 1), 1.0))))
        ),
    )
    return opt, sched


def train_model(
    cases: list[RealCase],
    cfg: dict[str, Any],
    *,
    steps: int,
    seed: int,
    log: Callable[[str], None] = print,
    state: dict[str, Any] | None = None,
    checkpoint_every: int = 0,
    save_state: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train a fresh (or resumed, ``state``) network for ``steps`` steps on ``cases``.

    Returns:
        ``(model in eval mode, {"history", "seconds" (wall), "cpu_seconds", "steps"})``; on a shared
        machine the CPU time is the budget figure (one thread ≈ one core-second per second).
    """
    if not cases:
        raise ValueError("no training cases")
    tr = cfg["train"]
    prep = inference_preprocessing(cfg)
    torch.manual_seed(seed)
    # Batches are built on the CPU (cheap: ~20 ms for 16 slices); the network runs where it is fastest.
    device = device_pick(str(tr.get("device", "auto")))
    model = model_build(cfg["model"]["architecture"], dict(cfg["model"].get("arch_config") or {}))
    model.to(device)
    opt, sched = _optimiser(model, lr=float(tr["lr"]), steps=steps)
    gen = torch.Generator().manual_seed(seed)
    step, history, spent, spent_cpu = 0, [], 0.0, 0.0
    if state:
        spent, spent_cpu = float(state.get("seconds", 0.0)), float(state.get("cpu_seconds", 0.0))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        step, history = int(state["step"]), list(state["history"])
    dice = DiceLoss(sigmoid=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5)
    bs, every = int(tr["batch_size"]), max(int(tr.get("val_every", 100)), 1)
    losses: list[float] = []
    started, cpu0 = time.perf_counter(), time.process_time()
    model.train()
    budget = float(tr.get("max_seconds") or 0.0)  # a lent GPU's lease: stop early, still return
    while step < steps and not (budget and time.perf_counter() - started > budget):
        x, y = _batch(cases, bs, prep, tr["augment"], gen)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss = dice(logits, y) + F.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        losses.append(loss.item())
        if step % every == 0 or step == steps:
            history.append({"step": step, "loss": float(np.mean(losses[-every:]))})
            el = time.perf_counter() - started
            log(f"step {step}/{steps} loss {history[-1]['loss']:.4f} ({el:.0f} s)")
            if save_state and checkpoint_every and step % checkpoint_every == 0:
                save_state(
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "generator": gen.get_state(),
                        "step": step,
                        "history": history,
                        "seconds": spent + time.perf_counter() - started,
                        "cpu_seconds": spent_cpu + time.process_time() - cpu0,
                    }
                )
    model.eval()  # left on its device: evaluation runs there too (checkpoints are saved from the CPU)
    return model, {
        "history": history,
        "seconds": spent + time.perf_counter() - started,
        "cpu_seconds": spent_cpu + time.process_time() - cpu0,
        "steps": step,
    }
