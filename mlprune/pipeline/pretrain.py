"""Stage `pretrain`: train the model from scratch, then fold BatchNorm into the convs."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_csv
from mlprune.checkpoint import save_checkpoint
from mlprune.config import require
from mlprune.data.splits import DataConfig
from mlprune.models.arch import ModelConfig
from mlprune.models.build import build_model, fold_batch_norm
from mlprune.pipeline.training import training_set
from mlprune.runtime import RuntimeConfig, setup
from mlprune.train import TrainConfig, train

SCHEDULE_KEY = "pretrain"


def pretrain(data: DataConfig, model_config: ModelConfig, schedule: TrainConfig, runtime: RuntimeConfig,
             out: Path, history_csv: Path, work_dir: Path) -> None:
    """Writes the BN-folded checkpoint to `out` and one row per epoch to `history_csv`."""
    spec = model_config.to_spec(data.classes)
    data.check_model_task(spec.task, spec.model)
    check_pretrain_schedule(schedule, spec.batch_norm)
    device = setup(runtime)
    dataset = training_set(data, schedule, runtime.seed, SCHEDULE_KEY)
    model = build_model(spec)
    tqdm.write(f"pretrain: {len(dataset)} images, {sum(p.numel() for p in model.parameters()):,} params, "
               f"{device}")
    history = train(model, dataset, schedule, device=device, seed=runtime.seed, work_dir=work_dir,
                    desc="pretrain")
    folded = fold_batch_norm(model.cpu().eval())
    save_checkpoint(out, folded)
    write_csv(history_csv, history)


def check_pretrain_schedule(schedule: TrainConfig, batch_norm: bool) -> None:
    """What only training from scratch needs: at least one epoch (else the model is random),
    and with BatchNorm at least two images per batch (BatchNorm normalises over the batch;
    torch refuses a single value per channel)."""
    require(schedule.epochs >= 1, f"{SCHEDULE_KEY}.epochs",
            f"must be >= 1 (0 would save an untrained model), got {schedule.epochs}")
    require(not batch_norm or schedule.batch_size >= 2, f"{SCHEDULE_KEY}.batch_size",
            f"must be >= 2 with model.batch_norm: true (BatchNorm needs more than one image per batch), "
            f"got {schedule.batch_size}")
