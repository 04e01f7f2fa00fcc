"""Images/s of the training step and of evaluation, for variants timed side by side in one process.

    python benchmarks/train_speed.py                      # default detector: before vs now, fp32/bf16, NCHW/NHWC
    python benchmarks/train_speed.py --width 1.0 --no-batch-norm --batch-size 2 --rounds 3 \\
        --variants torchvision,ours,ours-bf16             # ours vs torchvision's SSD300

Variants:
  ours         the trainer's step (mlprune.train.StepRunner) on build_model's SSD
  ours-old     the same model and step on the path before the speed-ups: torchvision's own
               transform and default boxes, the optimizer's per-tensor loop, out-of-place ReLUs,
               NaN-filled new memory (tests/test_speed.py: the same weights as `ours`)
  torchvision  torchvision's ssd300_vgg16(weights=None, weights_backbone=None) (width 1.0 only)
Suffixes: `-fp32` or `-bf16` set a variant's precision (bf16 autocast; else `--precision` does),
`-cl` trains it channels-last (common.channels_last), e.g. `ours-cl-bf16`.

Each round times every variant once, in order (A B C A B C ...), after a warm-up of each, so a
load change on a shared machine hits all of them alike. Printed: each variant's median images/s
over the rounds and its ratio to the first variant, per second of wall time and per second of
the process's CPU time (all threads; steadier on a loaded machine, but it counts OpenMP's
busy-waiting). The data is generated (the synthetic shapes) at the model's input size; a
training step includes indexing the dataset (augmentation). Evaluation is `model.eval()`
forward passes (transform, backbone, heads, NMS) under no_grad, in the variant's precision
(the pipeline evaluates in fp32). libgomp reads OMP_WAIT_POLICY at start-up, so compare
policies in separate runs; the header prints it.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import typer
from torch import nn

from mlprune.data.dataset import DetectionDataset
from mlprune.data.transforms import build_eval_transform, build_train_transform
from mlprune.data.voc import read_split
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.models.ssd import use_torchvision_parts
from mlprune.runtime import PRECISIONS, autocast, deterministic_mode, resolve_device
from mlprune.synthetic.scenes import generate_voc_dataset
from mlprune.train import StepRunner, TrainConfig, build_optimizer

CLASSES = ["circle", "square", "triangle", "cross", "ring"]
BASES = ("ours", "ours-old", "torchvision")


@dataclass
class Variant:
    name: str
    model: nn.Module
    step: StepRunner
    old: bool  # the code path before the speed-ups
    precision: str
    cursor: int = 0  # next batch index: every variant sees the same batches in the same order

    def next_batch(self, dataset: DetectionDataset, batch_size: int) -> list[tuple]:
        start = self.cursor * batch_size
        self.cursor += 1
        return [dataset[(start + k) % len(dataset)] for k in range(batch_size)]


@dataclass(frozen=True)
class Settings:
    model: str
    width: float
    batch_norm: bool
    device: torch.device


def split_variant(name: str, default_precision: str) -> tuple[str, str, bool]:
    """`ours-cl-bf16` -> (`ours`, `bf16`, channels_last True)."""
    base, precision, channels_last = name, default_precision, False
    while base not in BASES:
        if base.endswith(("-fp32", "-bf16")):
            base, precision = base[:-5], base[-4:]
        elif base.endswith("-cl"):
            base, channels_last = base[:-3], True
        else:
            raise typer.BadParameter(f"unknown variant {name!r}; bases: {', '.join(BASES)}, suffixes -fp32 -bf16 -cl")
    return base, precision, channels_last


def build_variant(name: str, default_precision: str, settings: Settings) -> Variant:
    base, precision, channels_last = split_variant(name, default_precision)
    torch.manual_seed(0)
    if base == "torchvision":
        model = torchvision_ssd(settings)
    else:
        model = build_model(build_spec(settings.model, len(CLASSES) + 1, width=settings.width,
                                       batch_norm=settings.batch_norm))
    old = base == "ours-old"
    if old:
        use_torchvision_parts(model)
    model.to(settings.device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, TrainConfig(epochs=1), foreach=None if old else True)
    step = StepRunner(model, optimizer, grad_clip=10.0, device=settings.device, precision=precision)
    return Variant(name, model, step, old=old, precision=precision)


def torchvision_ssd(settings: Settings) -> nn.Module:
    from torchvision.models.detection import ssd300_vgg16

    if (settings.model, settings.width, settings.batch_norm) != ("ssd300", 1.0, False):
        raise typer.BadParameter("the torchvision variant is SSD300 at width 1.0 without BatchNorm: "
                                 "use --model ssd300 --width 1.0 --no-batch-norm")
    return ssd300_vgg16(weights=None, weights_backbone=None, num_classes=len(CLASSES) + 1)


@dataclass(frozen=True)
class Rate:
    """Images per second of wall time, and per second of this process's CPU time (all threads):
    the second moves less when other processes load the machine."""

    wall: float
    cpu: float


class Clock:
    def __init__(self, device: torch.device):
        self.device = device
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rate(self, images: int) -> Rate:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return Rate(images / (time.perf_counter() - self.wall), images / (time.process_time() - self.cpu))


@contextlib.contextmanager
def code_path(old: bool):
    """The process-wide settings of the previous code path: NaN fill of new memory, ReLUs
    that allocate their output (the VGG trunk calls F.relu(x, inplace=True))."""
    relu = F.relu
    deterministic_mode(fill_new_memory=old)
    if old:
        F.relu = lambda x, inplace=False: torch.relu(x)
    try:
        yield
    finally:
        F.relu = relu
        deterministic_mode()


def time_train(variant: Variant, dataset: DetectionDataset, batch_size: int, steps: int) -> Rate:
    """Over `steps` training steps."""
    variant.model.train()
    with code_path(variant.old):
        clock = Clock(variant.step.device)
        for _ in range(steps):
            variant.step(variant.next_batch(dataset, batch_size))
        return clock.rate(steps * batch_size)


@torch.no_grad()
def time_eval(variant: Variant, images: list[torch.Tensor], steps: int) -> Rate:
    """Over `steps` forward passes of one batch in eval mode."""
    variant.model.eval()
    device = variant.step.device
    with code_path(variant.old):
        clock = Clock(device)
        for _ in range(steps):
            with autocast(device, variant.precision):
                variant.model([image.to(device) for image in images])
        return clock.rate(steps * len(images))


def interleaved(variants: list[Variant], measure: Callable[[Variant], Rate], rounds: int) -> dict[str, list[Rate]]:
    """One warm-up call per variant, then `rounds` rounds of one call each, in order."""
    for variant in variants:
        measure(variant)
    rates: dict[str, list[Rate]] = {v.name: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:
            rates[variant.name].append(measure(variant))
    return rates


def print_table(title: str, rates: dict[str, list[Rate]]) -> None:
    """Medians over the rounds, and their ratio to the first variant's."""
    baseline = next(iter(rates.values()))
    base_wall = statistics.median(r.wall for r in baseline)
    base_cpu = statistics.median(r.cpu for r in baseline)
    print(f"\n{title}\n{'variant':<18} {'img/s':>7} {'ratio':>6} {'img/cpu-s':>10} {'ratio':>6}   img/s per round")
    for name, values in rates.items():
        wall, cpu = statistics.median(r.wall for r in values), statistics.median(r.cpu for r in values)
        rounds = " ".join(f"{r.wall:.1f}" for r in values)
        print(f"{name:<18} {wall:7.2f} {wall / base_wall:5.2f}x {cpu:10.2f} {cpu / base_cpu:5.2f}x   {rounds}")


def synthetic_dataset(root: Path, image_size: int, n_images: int) -> list:
    generate_voc_dataset(root, CLASSES, n_trainval=n_images, n_test=1, image_size=image_size, seed=0)
    return read_split(root, "trainval", CLASSES)


def main(model: str = typer.Option("ssd300", help="ssd300 | ssd512"),
         width: float = typer.Option(0.09375, help="channel width multiplier"),
         batch_norm: bool = typer.Option(True, help="BatchNorm after each conv (the pretraining setting)"),
         batch_size: int = typer.Option(8, min=1),
         precision: str = typer.Option("auto", help=f"one of {PRECISIONS}, for variants without a suffix"),
         device: str = typer.Option("cpu", help="auto | cpu | cuda"),
         threads: int = typer.Option(2, min=1, help="CPU threads"),
         variants: str = typer.Option("ours-old,ours,ours-cl,ours-bf16,ours-cl-bf16",
                                      help="comma-separated, the first is the baseline"),
         rounds: int = typer.Option(8, min=1, help="timed rounds per variant"),
         steps: int = typer.Option(1, min=1, help="steps per round (few: finer interleaving)"),
         augment: str = typer.Option("flip", help="comma-separated training augmentations"),
         evaluate: bool = typer.Option(True, help="also time evaluation")) -> None:
    if precision not in PRECISIONS:
        raise typer.BadParameter(f"--precision must be one of {PRECISIONS}, got {precision!r}")
    torch.set_num_threads(threads)
    settings = Settings(model, width, batch_norm, resolve_device(device))
    spec = build_spec(model, len(CLASSES) + 1, width=width)
    with tempfile.TemporaryDirectory() as tmp:
        annotations = synthetic_dataset(Path(tmp), spec.image_size, n_images=max(32, 2 * batch_size))
        train_set = DetectionDataset(annotations, build_train_transform(augment.split(",")))
        eval_set = DetectionDataset(annotations[:batch_size], build_eval_transform())
    eval_images = [eval_set[i][0] for i in range(batch_size)]
    built = [build_variant(name, precision, settings) for name in variants.split(",")]
    print(f"{model} width {width} batch_norm {batch_norm}, batch {batch_size}, {spec.image_size}x{spec.image_size}, "
          f"{settings.device}, {threads} threads (OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}), "
          f"torch {torch.__version__}; {rounds} rounds x {steps} steps")
    print_table("training step", interleaved(built, lambda v: time_train(v, train_set, batch_size, steps), rounds))
    if evaluate:
        print_table("evaluation", interleaved(built, lambda v: time_eval(v, eval_images, steps), rounds))


if __name__ == "__main__":
    typer.run(main)
