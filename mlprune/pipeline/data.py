"""Stage `data`: generate the embedded dataset, but only where the pipeline reads it.

`dvc repro` runs every stage of dvc.yaml on every preset, and DVC needs this stage's out
to exist. With the embedded default (`data.root` is the stage's out, `data/synthetic`) the
stage generates the dataset there. With a dataset of one's own (`data.root` anywhere else:
a VOCdevkit, GTSDB, CIFAR-10, GTSRB, an image folder) it neither reads nor touches that
dataset and generates nothing: the out is a folder holding one README that says where
the data comes from, and `pretrain` depends on `data.root` itself, not on this stage.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import atomic_path
from mlprune.data.splits import DataConfig
from mlprune.errors import ConfigError
from mlprune.synthetic.embedded import EMBEDDED_FORMATS, generate_dataset
from mlprune.synthetic.scenes import SyntheticConfig

NOTE = "README.txt"


def is_embedded_root(data: DataConfig, out: Path) -> bool:
    """Whether `data.root` is the folder this stage generates (the embedded default)."""
    return Path(data.root).resolve() == out.resolve()


def prepare_data(out: Path, data: DataConfig, synthetic: SyntheticConfig, seed: int) -> None:
    """Generate the embedded dataset at `out` if `data.root` is `out`, else write only the note."""
    if not is_embedded_root(data, out):
        write_note(out, data.root, data.format)
        return
    if data.format not in EMBEDDED_FORMATS:
        raise ConfigError(f"data.root: {data.root} is where the data stage generates the embedded dataset "
                          f"({' or '.join(EMBEDDED_FORMATS)}); point data.root at your {data.format} "
                          "dataset elsewhere")
    generate_dataset(out, data, synthetic, seed)


def write_note(out: Path, root: str, data_format: str) -> None:
    """Replace `out` with a folder holding only the note (an earlier generated dataset goes)."""
    text = (f"Nothing generated: data.root is {root} ({data_format}); the stages read it from there.\n"
            f"The data stage generates the embedded dataset here only when data.root is {out}.\n")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / NOTE).write_text(text)
    tqdm.write(f"data: nothing to generate, data.root is {root} ({data_format})")
