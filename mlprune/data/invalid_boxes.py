"""`data.invalid_boxes`: what a detection split does with boxes that parse but are not boxes of their image.

Real VOC-format sets hold a few zero-area or out-of-image boxes among thousands (see
mlprune.data.voc.box_problem for the rule). `error`, the default, refuses the split with one
line that names the files and says how to skip. `skip` leaves each such box out with a warning
line, drops the training images it leaves without any box (their objects are still in the
pixels, so training on them as background would teach the wrong thing) and prints a summary.
Test images keep their other boxes and are all evaluated; the number of boxes left out is
reported with the metrics (`skipped_boxes`), so evaluation never loses ground truth silently.
"""

from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm

from mlprune.data.voc import Annotation, SkippedBox
from mlprune.errors import DataError

INVALID_BOXES = ("error", "skip")
NAMED_IN_ERROR = 5  # invalid boxes quoted in the refusal; check-data lists every one


def apply_invalid_boxes(annotations: Sequence[Annotation], skipped: Sequence[SkippedBox], policy: str,
                        split: str, training: bool) -> tuple[list[Annotation], int]:
    """The split's annotations under `policy`, and how many of its boxes were left out.

    `skipped`: the invalid boxes the reader left out. A reader that validates other splits too
    (GTSDB's one gt.txt) may add theirs: `error` refuses them as well, `skip` counts only this
    split's. training: the split trains (and validates) the model, so images left without a box go.
    """
    if policy not in INVALID_BOXES:
        raise ValueError(f"policy: must be one of {', '.join(INVALID_BOXES)}, got {policy!r}")
    if skipped and policy == "error":
        raise DataError(refusal(skipped, split))
    images = {a.image_path for a in annotations}
    skipped = [box for box in skipped if box.image_path in images]
    if not skipped:
        return list(annotations), 0
    for box in skipped:
        tqdm.write(f"warning: {box.message}: box skipped (data.invalid_boxes: skip)")
    emptied = {box.image_path for box in skipped}
    kept = [a for a in annotations if not (training and a.image_path in emptied and len(a.labels) == 0)]
    tqdm.write(f"warning: split {split}: skipped {_count(len(skipped), 'invalid box', 'es')} in "
               f"{_count(len(emptied), 'image')}; " + (
                   f"dropped {_count(len(annotations) - len(kept), 'training image')} left without a box"
                   if training else "every image is still evaluated (metrics: skipped_boxes)"))
    return kept, len(skipped)


def refusal(skipped: Sequence[SkippedBox], split: str) -> str:
    """One line: the first invalid boxes, each with its file, then how to train without them."""
    quoted = "; ".join(box.message for box in skipped[:NAMED_IN_ERROR])
    how = f"set data.invalid_boxes: skip to train without {'it' if len(skipped) == 1 else 'them'}"
    if len(skipped) > NAMED_IN_ERROR:
        quoted += f"; and {len(skipped) - NAMED_IN_ERROR} more"
        how += "; mlprune check-data lists every one"
    return f"{quoted} ({_count(len(skipped), 'invalid box', 'es')} found reading split {split}: {how})"


def _count(n: int, noun: str, plural: str = "s") -> str:
    return f"{n} {noun}{'' if n == 1 else plural}"
