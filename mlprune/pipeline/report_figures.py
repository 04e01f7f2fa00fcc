"""A one-page report that works offline: `report/README.md` with PNG figures, from the metrics files.

`dvc plots show` writes HTML that loads Vega from the internet, so on a machine without it the
plots are blank. This draws the same figures with matplotlib (Agg, no display needed) into PNGs
that any Markdown viewer shows: the paper's Fig 2 (weights without and with L1) and Fig 3
(non-zero weights per layer), the threshold sweeps, the score against params for every phase,
Table 5 (k-det, detection only) and a table of every model's metrics.

Required: `<metrics>/pretrain/eval.json` and, for every phase, `eval.json`, `threshold.json`,
`threshold_sweep.csv`, `nonzero.csv`, and `kdet_k<k>/eval.json` for every k asked for; a missing
one is a one-line error naming it. Optional: a phase's `weight_hist/*.csv` (none when the phase
has no `hist_layers`) and `selection.json`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from mlprune.atomic import atomic_path
from mlprune.errors import MlpruneError
from mlprune.pipeline.report import kdet_name, read_metrics

DPI = 110
_KDET_COLOURS = ("tab:brown", "tab:pink", "tab:olive", "tab:cyan", "black", "tab:purple", "tab:green", "tab:red")
SCORE_LABELS = {"map_voc07": "VOC07 mAP", "top1": "top-1 accuracy"}
# Table columns: metrics key, heading, format. A column shows when any model has the key.
TABLE_COLUMNS = (
    ("params", "params", "{:,}"), ("compression_x", "compression", "{:.2f}x"), ("map_voc07", "VOC07 mAP", "{:.4f}"),
    ("map_area", "area mAP", "{:.4f}"), ("top1", "top-1", "{:.4f}"), ("gflops", "GFLOPs", "{:.4g}"),
    ("flops_reduction", "FLOPs saved", "{:.1%}"), ("size_mb", "size (MB)", "{:.3g}"),
    ("cpu_latency_ms", "CPU latency (ms)", "{:.2f}"), ("latency_speedup_x", "speedup", "{:.2f}x"),
    ("skipped_boxes", "skipped test boxes", "{:d}"),
)
_CSV_COLUMNS = {"threshold_sweep.csv": ("grid", "t", "score", "sparsity"),
                "nonzero.csv": ("layer", "before", "after_threshold"),
                "weight_hist": ("weight", "without_l1", "with_l1")}


@dataclass(frozen=True)
class Phase:
    """What the report shows of one pruning phase."""

    name: str
    metrics: dict
    threshold: dict
    sweep: pd.DataFrame
    nonzero: pd.DataFrame
    histograms: dict[str, pd.DataFrame]  # layer -> weight, without_l1, with_l1 (Fig 2); may be empty
    widths: dict[str, tuple[int, int]]  # layer -> (filters before, after selection); empty without selection.json


def write_report(metrics_dir: Path, phases: Sequence[str], kdet_ks: Sequence[int], out_dir: Path) -> Path:
    """Write `out_dir/README.md` and its PNGs (the folder is replaced atomically); returns the README."""
    metrics_dir = Path(metrics_dir)
    pretrain = read_metrics(metrics_dir / "pretrain" / "eval.json")
    score = next((key for key in SCORE_LABELS if key in pretrain), None)
    if score is None:
        raise MlpruneError(f"{metrics_dir / 'pretrain' / 'eval.json'}: has neither map_voc07 nor top1")
    loaded = [read_phase(metrics_dir / name, score) for name in phases]
    kdet = {k: read_eval(metrics_dir / kdet_name(k) / "eval.json", score) for k in kdet_ks}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        figures = {
            "score_vs_params.png": draw_score_vs_params(pretrain, loaded, kdet, score),
            "threshold_sweeps.png": draw_threshold_sweeps(loaded),
            "fig2_weight_histograms.png": draw_weight_histograms(loaded),
            "fig3_nonzero_weights.png": draw_nonzero(loaded),
        }
        for name, figure in figures.items():
            if figure is not None:
                figure.savefig(tmp / name, dpi=DPI, metadata={"Software": None})  # no version stamp: stable bytes
        (tmp / "README.md").write_text(render_readme(pretrain, loaded, kdet, score,
                                                     {n for n, f in figures.items() if f is not None}))
    return Path(out_dir) / "README.md"


def read_eval(path: Path, score: str) -> dict:
    """An evaluate stage's metrics, which must hold the params and the task's score."""
    metrics = read_metrics(path)
    missing = [key for key in ("params", score) if key not in metrics]
    if missing:
        raise MlpruneError(f"{path}: missing {', '.join(missing)} (the pretrained model's metrics have {score})")
    return metrics


def read_phase(folder: Path, score: str) -> Phase:
    nonzero = _read_csv(folder / "nonzero.csv", _CSV_COLUMNS["nonzero.csv"])
    order = {layer: i for i, layer in enumerate(nonzero["layer"])}
    hist_files = sorted((folder / "weight_hist").glob("*.csv"), key=lambda p: (order.get(p.stem, len(order)),
                                                                              _natural(p.stem)))
    selection = folder / "selection.json"
    layers = read_metrics(selection).get("layers", {}) if selection.is_file() else {}
    return Phase(
        name=folder.name,
        metrics=read_eval(folder / "eval.json", score),
        threshold=read_metrics(folder / "threshold.json"),
        sweep=_read_csv(folder / "threshold_sweep.csv", _CSV_COLUMNS["threshold_sweep.csv"]),
        nonzero=nonzero,
        histograms={p.stem: _read_csv(p, _CSV_COLUMNS["weight_hist"]) for p in hist_files},
        widths={name: (layer["width_before"], layer["width_after"]) for name, layer in layers.items()},
    )


def _read_csv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise MlpruneError(f"{path}: not found (has its stage run?)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise MlpruneError(f"{path}: not a CSV file ({' '.join(str(err).split())})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MlpruneError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(frame.columns)})")
    return frame


def _natural(name: str) -> list:
    """conv9_1 before conv10_1."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


# --- figures ---------------------------------------------------------------------------------------------

def draw_score_vs_params(pretrain: dict, phases: Sequence[Phase], kdet: dict[int, dict], score: str) -> Figure:
    """The pretrained model, then the model after each phase; with k-det, a second panel adds the cuts.

    Each model is its own colour in the legend (not a label by the point: the pretrained model and
    phase 1 often share their parameter count and nearly their score)."""
    models = {"pretrain": pretrain, **{p.name: p.metrics for p in phases}}
    panels = 2 if kdet else 1
    figure = Figure(figsize=(6.5 * panels, 4.6), layout="constrained")
    axes = figure.subplots(1, panels, squeeze=False)[0]
    _plot_models(axes[0], models, score)
    axes[0].set_title("after each phase")
    if kdet:
        _plot_models(axes[1], models, score, faded=True)
        for (k, metrics), marker, colour in zip(kdet.items(), "s^vD<>ph", _KDET_COLOURS, strict=False):
            axes[1].plot(metrics["params"], metrics[score], marker, color=colour, markersize=8, linestyle="none",
                         label=f"k={k}: {metrics['params']:,}, {metrics[score]:.4f}")
        axes[1].set_title("with the final model cut to k detection sources")
    for ax in axes:
        ax.set_xlabel("parameters")
        ax.set_ylabel(f"{SCORE_LABELS[score]} (test)")
        ax.xaxis.set_major_formatter(lambda x, _: f"{x:,.0f}")
        ax.margins(x=0.08, y=0.15)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    figure.suptitle(f"{SCORE_LABELS[score]} against parameters")
    return figure


def _plot_models(ax, models: dict[str, dict], score: str, faded: bool = False) -> None:
    params = [m["params"] for m in models.values()]
    ax.plot(params, [m[score] for m in models.values()], "-", color="lightgrey", zorder=1)
    for name, metrics in models.items():
        style = {"color": "grey", "alpha": 0.5} if faded else {}
        ax.plot(metrics["params"], metrics[score], "o", markersize=7, zorder=2, **style,
                label=None if faded else f"{name}: {metrics['params']:,}, {metrics[score]:.4f}")
    if faded:
        ax.plot([], [], "o", color="grey", alpha=0.5, label="pretrain and the phases")


def draw_threshold_sweeps(phases: Sequence[Phase]) -> Figure | None:
    if not phases:
        return None
    columns = min(2, len(phases))
    rows = -(-len(phases) // columns)
    figure = Figure(figsize=(6 * columns, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    for ax, phase in zip(axes, phases, strict=False):
        chosen, sweep = phase.threshold, phase.sweep
        ax.plot(sweep["t"], sweep["score"], "o-", label="after thresholding at t")
        ax.axhline(chosen["reference_score"], color="grey", linestyle="--", label="L1 model (no threshold)")
        ax.axhline(chosen["reference_score"] - chosen["tolerance"], color="grey", linestyle=":",
                   label=f"lowest accepted (L1 model - {chosen['tolerance']:g})")
        ax.plot([chosen["t"]], [chosen["score"]], "o", markersize=11, markerfacecolor="none", color="tab:red",
                markeredgewidth=2, label=f"chosen: t={chosen['t']:.3g}, {chosen['sparsity']:.0%} zero")
        ax.set_title(phase.name)
        ax.set_xlabel("threshold t (|w| below it set to zero)")
        ax.set_ylabel("validation score")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    for ax in axes[len(phases):]:
        ax.set_visible(False)
    figure.suptitle("Threshold search: validation score against t")
    return figure


def draw_weight_histograms(phases: Sequence[Phase]) -> Figure | None:
    panels = [(phase, layer, frame) for phase in phases for layer, frame in phase.histograms.items()]
    if not panels:
        return None
    columns = min(2, len(panels))
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(6 * columns, 3.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    for ax, (phase, layer, frame) in zip(axes, panels, strict=False):
        for column, label, colour in (("without_l1", "before L1", "tab:blue"), ("with_l1", "after L1", "tab:red")):
            ax.step(frame["weight"], frame[column], where="mid", label=label, color=colour)
        t = phase.threshold["t"]
        ax.axvspan(-t, t, color="grey", alpha=0.2, label=f"|w| < t = {t:.3g}: zeroed")
        ax.set_yscale("log")
        ax.set_title(f"{phase.name}: {layer}")
        ax.set_xlabel("weight")
        ax.set_ylabel("count (log)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    figure.suptitle("Fig 2: weight distribution before and after the L1 fine-tune")
    return figure


def draw_nonzero(phases: Sequence[Phase]) -> Figure | None:
    """Linear bars, each after-bar labelled with the share it keeps: on a log axis bars have no
    true length, and a linear one alone would hide the small early layers."""
    if not phases:
        return None
    sizes = [len(p.nonzero) for p in phases]
    figure = Figure(figsize=(8, 0.34 * sum(sizes) + 1.2 * len(phases) + 0.6), layout="constrained")
    axes = figure.subplots(len(phases), 1, squeeze=False, gridspec_kw={"height_ratios": [max(s, 1) for s in sizes]})
    for ax, phase in zip(axes[:, 0], phases, strict=True):
        frame = phase.nonzero
        rows = range(len(frame))
        ax.barh([r - 0.2 for r in rows], frame["before"], height=0.4, label="before the phase", color="tab:blue")
        bars = ax.barh([r + 0.2 for r in rows], frame["after_threshold"], height=0.4, label="after L1 + threshold",
                       color="tab:red")
        kept = [f"{after / before:.0%}" if before else "-" for before, after in
                zip(frame["before"], frame["after_threshold"], strict=True)]
        ax.bar_label(bars, kept, padding=3, fontsize=7)
        ax.set_yticks(list(rows), frame["layer"], fontsize=8)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(lambda x, _: f"{x:,.0f}")
        ax.margins(x=0.08)
        ax.set_title(phase.name, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("non-zero weights (red labels: the share left after L1 + threshold)")
    figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=9)
    figure.suptitle("Fig 3: non-zero weights per layer")
    return figure


# --- README ----------------------------------------------------------------------------------------------

def render_readme(pretrain: dict, phases: Sequence[Phase], kdet: dict[int, dict], score: str,
                  figures: set[str]) -> str:
    label = SCORE_LABELS[score]
    lines = ["# Pruning report", "",
             f"Every model of the pipeline ({', '.join(['pretrain', *(p.name for p in phases)])}), from the "
             "metrics files; the figures are PNGs, so this page needs no network.", "",
             "## Every model's metrics", "",
             *_table({"pretrain": pretrain, **{p.name: p.metrics for p in phases}}, "model"), ""]
    if "score_vs_params.png" in figures:
        lines += [f"## {label} against parameters", "", f"![{label} against parameters](score_vs_params.png)", ""]
    if kdet:
        lines += ["## Table 5: k-det, the final model cut to its first k detection sources", "",
                  *_table({f"k={k}": m for k, m in kdet.items()}, "k"), ""]
    if phases:
        lines += ["## Threshold search", "", "![threshold sweeps](threshold_sweeps.png)", "",
                  "| phase | grid value | t | validation score | L1 model | tolerance | weights zero |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {p.name} | {p.threshold['grid']:g} | {p.threshold['t']:.4g} | {p.threshold['score']:.4f} | "
                  f"{p.threshold['reference_score']:.4f} | {p.threshold['tolerance']:g} | "
                  f"{p.threshold['sparsity']:.1%} |" for p in phases]
        lines.append("")
    lines += _histogram_section(phases, figures)
    if phases:
        lines += ["## Fig 3: non-zero weights per layer", "", "![Fig 3](fig3_nonzero_weights.png)", ""]
    lines += _widths_section(phases)
    return "\n".join(lines)


def _table(models: dict[str, dict], heading: str) -> list[str]:
    columns = [c for c in TABLE_COLUMNS if any(c[0] in m for m in models.values())]
    rows = [f"| {heading} | " + " | ".join(title for _, title, _ in columns) + " |",
            "|---" * (len(columns) + 1) + "|"]
    for name, metrics in models.items():
        cells = [fmt.format(metrics[key]) if metrics.get(key) is not None else "-" for key, _, fmt in columns]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def _histogram_section(phases: Sequence[Phase], figures: set[str]) -> list[str]:
    without = [p.name for p in phases if not p.histograms]
    if not phases:
        return []
    lines = ["## Fig 2: weights before and after the L1 fine-tune", ""]
    if "fig2_weight_histograms.png" in figures:
        lines += ["![Fig 2](fig2_weight_histograms.png)", ""]
    if without:
        lines += [f"No histogram for {', '.join(without)} (the phase lists no `hist_layers`).", ""]
    return lines


def _widths_section(phases: Sequence[Phase]) -> list[str]:
    selected = [p for p in phases if p.widths]
    if not selected:
        return []
    lines = ["## Filters per layer, before and after each phase's selection", "",
             "| phase | layer | filters before | filters after |", "|---|---|---|---|"]
    lines += [f"| {p.name} | {layer} | {before} | {after} |" for p in selected
              for layer, (before, after) in p.widths.items()]
    return [*lines, ""]
