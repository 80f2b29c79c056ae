"""The analysis figures (like the paper's Figure 5), drawn server-side with matplotlib's Agg canvas.

Each figure is a pure function of the results dict of ``analysis_run``; ``figure_render`` returns
SVG or PNG bytes. No pyplot: a ``Figure`` with its own canvas is safe in threaded web workers.
No Django here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

ARM_COLOURS = {"original": "#1f77b4", "registered": "#d62728", "fused": "#2ca02c"}
_FALLBACK_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
SYNTHETIC_LABEL = "SYNTHETIC DATA — not clinical evidence"


def arm_colour(arm: str, arms: list[str]) -> str:
    if arm in ARM_COLOURS:
        return ARM_COLOURS[arm]
    return _FALLBACK_COLOURS[arms.index(arm) % len(_FALLBACK_COLOURS)] if arm in arms else "#333"


def _finish(fig: Figure, results: Mapping[str, Any], title: str) -> None:
    sha = results["snapshot"]["sha256"]
    suptitle = title + (f"  [{SYNTHETIC_LABEL}]" if results["synthetic"] else "")
    # About 11 characters per inch at this size: a longer title would be clipped at the figure's
    # edges, so the label goes on a line of its own.
    if len(suptitle) > fig.get_figwidth() * 11 and results["synthetic"]:
        suptitle = f"{title}\n[{SYNTHETIC_LABEL}]"
    fig.suptitle(suptitle, fontsize=11, color="#7a1f00" if results["synthetic"] else "black")
    # supxlabel takes part in the constrained layout, so the provenance line never overlaps axes.
    fig.supxlabel(
        f"snapshot {sha[:12]} · reference: {results['reference_label']}",
        fontsize=7,
        color="#555",
        x=0.99,
        ha="right",
    )
    if results["synthetic"]:
        fig.text(
            0.5,
            0.5,
            "SYNTHETIC",
            ha="center",
            va="center",
            fontsize=60,
            color="#d0a000",
            alpha=0.12,
            rotation=30,
            zorder=0,
        )


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 4) if n > 0 else 1
    return max(1, math.ceil(n / cols)), cols


def figure_roc(results: Mapping[str, Any]) -> Figure:
    """Empirical ROC curves, one panel per reader, both (all) arms overlaid, AUC [CI] in the legend."""
    arms = list(results["arms"])
    readers = [r["reader"] for r in results["readers"]]
    rows, cols = _grid(len(readers))
    fig = Figure(figsize=(3.2 * cols, 3.3 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    by_key = {(r["reader"], r["arm"]): r for r in results["per_reader_arm"]}
    levels = {r["reader"]: r["level"] for r in results["readers"]}
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, reader in enumerate(readers):
        ax = axes[i // cols][i % cols]
        ax.plot([0, 1], [0, 1], ls=":", color="#999", lw=0.8)
        for arm in arms:
            entry = by_key.get((reader, arm))
            if entry is None or not entry.get("roc"):
                continue
            roc = entry["roc"]
            auc = entry["auc"]
            ci = entry.get("auc_ci") or [None, None]
            label = f"{arm}: AUC {auc:.2f}" if auc is not None else f"{arm}: AUC undefined"
            if auc is not None and ci[0] is not None:
                label += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
            ax.plot(
                roc["fpr"],
                roc["tpr"],
                drawstyle="default",
                marker="o",
                ms=3,
                lw=1.6,
                color=arm_colour(arm, arms),
                label=label,
            )
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_title(f"{reader} ({levels.get(reader, '')})", fontsize=10)
        ax.set_xlabel("1 − specificity")
        ax.set_ylabel("sensitivity")
        ax.legend(loc="lower right", fontsize=7)
    for j in range(len(readers), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    _finish(fig, results, "ROC curves per reader (PI-RADS-like score)")
    return fig


def figure_kappa(results: Mapping[str, Any]) -> Figure:
    """Kappa with 95% CI as horizontal bars, one panel per scale (dichotomised, linear, quadratic,
    Fleiss categorical), bars coloured by arm; undefined kappas are labelled so, never drawn as 0."""
    entries = list(results["kappa"])
    n_readers = len(results["readers"])
    many = n_readers > 4
    if many:
        # 10 readers make 45 pairs per arm: the figure keeps reader-vs-reference, within-reader
        # and Fleiss' kappa; every pairwise kappa stays in the table and the exports.
        entries = [k for k in entries if k["kind"] != "between readers"]
    scales = list(dict.fromkeys(k["weighting"] for k in entries)) or ["—"]
    per_panel = max((sum(1 for k in entries if k["weighting"] == s) for s in scales), default=1)
    fig = Figure(
        figsize=(3.6 * len(scales) + 1.5, max(2.8, 0.28 * per_panel + 1.4)), layout="constrained"
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(scales), squeeze=False)[0]
    arms = list(results["arms"])
    for ax, scale in zip(axes, scales):
        mine = [k for k in entries if k["weighting"] == scale]
        labels = []
        for y, k in enumerate(mine):
            arm = k.get("arm") or ""
            labels.append(k["comparison"] + (f" · {arm}" if arm else ""))
            colour = arm_colour(arm, arms) if arm else "#777"
            if k["kappa"] is None:
                ax.text(0.02, y, "undefined", va="center", fontsize=7, color="#a00")
                continue
            ax.barh(y, k["kappa"], color=colour, alpha=0.75, height=0.65)
            ci = k.get("ci") or [None, None]
            if ci[0] is not None and ci[1] is not None:
                ax.errorbar(
                    k["kappa"],
                    y,
                    xerr=[[k["kappa"] - ci[0]], [ci[1] - k["kappa"]]],
                    fmt="none",
                    ecolor="black",
                    capsize=2,
                    lw=0.8,
                )
        ax.set_yticks(range(len(mine)), labels, fontsize=7)
        ax.set_ylim(len(mine) - 0.5, -0.5)
        ax.axvline(0, color="black", lw=0.8)
        lows = [k["ci"][0] for k in mine if k.get("ci") and k["ci"][0] is not None]
        lows += [k["kappa"] for k in mine if k["kappa"] is not None]
        ax.set_xlim(min([-0.2, *(v - 0.05 for v in lows)]), 1.0)
        ax.set_xlabel("κ (95% CI)")
        ax.set_title(scale, fontsize=9)
    if not entries:
        axes[0].text(0.5, 0.5, "no kappa computed", transform=axes[0].transAxes, ha="center")
    title = "Agreement (kappa): reader vs reference, between readers, within reader"
    if many:
        title = (
            f"Agreement (kappa): reader vs reference, within reader, Fleiss ({n_readers} readers;"
            " pairwise kappas in the table)"
        )
    _finish(fig, results, title)
    return fig


def figure_likert(results: Mapping[str, Any]) -> Figure:
    """Likert confidence per reader, two arms side by side, each case's pair joined by a line."""
    pairs = results["likert_pairs"]
    arms = list(pairs["arms"])
    readers = [r["reader"] for r in results["readers"]]
    rows, cols = _grid(len(readers))
    fig = Figure(figsize=(2.8 * cols, 3.2 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    wilcoxon: dict[str, list[Mapping[str, Any]]] = {}
    for t in results["tests"]:
        if t["family"] == "Wilcoxon signed-rank" and t.get("reader"):
            wilcoxon.setdefault(t["reader"], []).append(t)
    for i, reader in enumerate(readers):
        ax = axes[i // cols][i % cols]
        mine = [p for p in pairs["rows"] if p["reader"] == reader]
        if len(arms) >= 2:
            # One line per distinct path of scores across the arms (baseline first), its width
            # growing with the number of cases: readable with 20 cases and with 1,000.
            counts: dict[tuple[int, ...], int] = {}
            for p in mine:
                path_of_case = tuple(p.get(arm) for arm in arms)
                if all(v is not None for v in path_of_case):
                    counts[path_of_case] = counts.get(path_of_case, 0) + 1
            n_pairs = sum(counts.values()) or 1
            for path, n in sorted(counts.items()):
                first, last = path[0], path[-1]
                colour = "#2e7d32" if last > first else ("#c62828" if last < first else "#888")
                width = 0.6 + 9.0 * n / n_pairs
                ax.plot(
                    range(len(arms)),
                    path,
                    color=colour,
                    alpha=0.55,
                    lw=width,
                    solid_capstyle="round",
                )
            for x, arm in enumerate(arms):
                scores = [p[arm] for p in mine if p.get(arm) is not None]
                if scores:
                    box = ax.boxplot(
                        scores, positions=[x], widths=0.35, patch_artist=True, showfliers=False
                    )
                    for patch in box["boxes"]:
                        patch.set_facecolor(arm_colour(arm, arms))
                        patch.set_alpha(0.25)
            ax.text(
                0.5,
                0.02,
                f"{sum(counts.values())} cases · green up, red down ({arms[-1]} vs {arms[0]})",
                transform=ax.transAxes,
                ha="center",
                fontsize=7,
                color="#555",
            )
        ax.set_xticks(range(len(arms)), arms)
        ax.set_xlim(-0.5, len(arms) - 0.5)
        ax.set_ylim(0.5, 7.5)
        ax.set_yticks(range(1, 8))
        ax.set_ylabel("Likert confidence (1–7)")
        subtitle = f"{reader}"
        tests = [t for t in wilcoxon.get(reader, []) if t.get("p") is not None]
        for test in tests:
            # Name the comparison whenever there are several (three arms).
            which = f" ({test.get('comparison', '')})" if len(tests) > 1 else ""
            subtitle += f"\nWilcoxon p={test['p']:.3g}{which}"
        ax.set_title(subtitle, fontsize=8 if len(tests) > 1 else 9)
    for j in range(len(readers), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    _finish(fig, results, "Diagnostic confidence, paired by case")
    return fig


def figure_mrmc(results: Mapping[str, Any]) -> Figure:
    """Per-reader AUCs joined across arms, the reader-averaged AUCs, and the MRMC difference CI."""
    arms_all = list(results["arms"])
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax_auc, ax_diff = fig.subplots(1, 2, width_ratios=[1.2, 1])
    mrmc = list(results["mrmc"])
    if not mrmc:
        ax_auc.text(0.5, 0.5, "MRMC not computed", transform=ax_auc.transAxes, ha="center")
        ax_diff.set_visible(False)
        _finish(fig, results, "MRMC analysis")
        return fig
    arms = arms_all
    by_key = {(r["reader"], r["arm"]): r for r in results["per_reader_arm"]}
    for reader in [r["reader"] for r in results["readers"]]:
        ys = [by_key.get((reader, a), {}).get("auc") for a in arms]
        if all(v is not None for v in ys):
            ax_auc.plot(range(len(arms)), ys, color="#999", lw=0.8, marker="o", ms=3)
            ax_auc.annotate(
                reader,
                (len(arms) - 1, ys[-1]),
                xytext=(4, 0),
                textcoords="offset points",
                fontsize=7,
                va="center",
            )
    averaged: dict[str, float] = {}
    for m in mrmc:
        for arm, auc in zip(m["arms"], m["auc"]):
            if auc is not None:
                averaged.setdefault(arm, auc)
    for x, arm in enumerate(arms):
        if arm in averaged:
            ax_auc.plot(x, averaged[arm], "D", ms=9, color=arm_colour(arm, arms_all), zorder=3)
    ax_auc.set_xticks(range(len(arms)), arms)
    ax_auc.set_xlim(-0.4, len(arms) - 0.6 + 0.3)
    ax_auc.set_ylabel("AUC")
    ax_auc.set_title("per-reader AUC (lines) and reader average (◆)", fontsize=9)
    labels = []
    for y, m in enumerate(mrmc):
        labels.append(f"{m['arms'][1]} − {m['arms'][0]}\n{m['analysis']}, {m['covariance']}")
        ci = m.get("ci") or [None, None]
        if m["difference"] is None:
            continue
        if ci[0] is not None and ci[1] is not None:
            ax_diff.errorbar(
                m["difference"],
                y,
                xerr=[[m["difference"] - ci[0]], [ci[1] - m["difference"]]],
                fmt="o",
                color="black",
                capsize=4,
            )
        else:
            ax_diff.plot(m["difference"], y, "o", color="black")
        p = m.get("p")
        ax_diff.annotate(
            f"p={p:.3g}" if p is not None else "p undefined",
            (m["difference"], y),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )
    ax_diff.axvline(0, color="#999", lw=0.8, ls="--")
    ax_diff.set_yticks(range(len(mrmc)), labels, fontsize=7)
    ax_diff.set_ylim(-0.6, len(mrmc) - 0.4)
    ax_diff.invert_yaxis()
    ax_diff.set_xlabel("AUC difference (arm − baseline, as labelled), 95% CI")
    ax_diff.set_title("Obuchowski–Rockette (Hillis df)", fontsize=9)
    _finish(fig, results, "MRMC analysis")
    return fig


@dataclass(frozen=True)
class FigureSpec:
    key: str
    title: str
    build: Callable[[Mapping[str, Any]], Figure]


FIGURES: dict[str, FigureSpec] = {
    s.key: s
    for s in (
        FigureSpec("roc", "ROC curves per reader, every arm", figure_roc),
        FigureSpec("kappa", "Agreement (kappa)", figure_kappa),
        FigureSpec("likert", "Likert confidence paired by case", figure_likert),
        FigureSpec("mrmc", "MRMC result", figure_mrmc),
    )
}

FIGURE_CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


def figure_render(key: str, results: Mapping[str, Any], *, fmt: str) -> bytes:
    """SVG (text kept as text, reproducible ids, no date) or PNG (150 dpi) bytes of one figure."""
    if key not in FIGURES:
        raise KeyError(f"unknown figure {key!r}; expected one of {sorted(FIGURES)}")
    if fmt not in FIGURE_CONTENT_TYPES:
        raise ValueError(f"unknown figure format {fmt!r}; expected svg or png")
    fig = FIGURES[key].build(results)
    buffer = io.BytesIO()
    sha = results["snapshot"]["sha256"]
    if fmt == "svg":
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"{key}-{sha}"}):
            fig.savefig(buffer, format="svg", metadata={"Date": None, "Title": FIGURES[key].title})
    else:
        fig.savefig(buffer, format="png", dpi=150, metadata={"Title": FIGURES[key].title})
    return buffer.getvalue()
