"""Stage `pretrain`: train the model from scratch, then fold BatchNorm into the convs."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_csv
from mlprune.checkpoint import save_checkpoint
from mlprune.data.splits import DataConfig, train_dataset
from mlprune.models.arch import ModelConfig
from mlprune.models.build import build_model, fold_batch_norm
from mlprune.runtime import RuntimeConfig, setup
from mlprune.train import TrainConfig, train


def pretrain(data: DataConfig, model_config: ModelConfig, schedule: TrainConfig, runtime: RuntimeConfig,
             out: Path, history_csv: Path, work_dir: Path) -> None:
    """Writes the BN-folded checkpoint to `out` and one row per epoch to `history_csv`."""
    device = setup(runtime)
    dataset = train_dataset(data, runtime.seed, schedule.augment)
    model = build_model(model_config.to_spec(len(data.classes)))
    data.check_model_task(model.spec.task, model.spec.model)
    tqdm.write(f"pretrain: {len(dataset)} images, {sum(p.numel() for p in model.parameters()):,} params, "
               f"{device}")
    history = train(model, dataset, schedule, device=device, seed=runtime.seed, work_dir=work_dir,
                    desc="pretrain")
    folded = fold_batch_norm(model.cpu().eval())
    save_checkpoint(out, folded)
    write_csv(history_csv, history)
