"""Stage `retrain`: train the pruned model with the original loss (no L1)."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params, parse_section
from mlprune.data.splits import data_from_params
from mlprune.evaluation.config import EvalConfig
from mlprune.pipeline.phase_config import phase_from_params
from mlprune.pipeline.retrain import retrain
from mlprune.pruning.threshold import ThresholdConfig
from mlprune.runtime import RuntimeConfig
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(phase: Annotated[str, path_option("phase name in params.yaml `phases`")],
         model: Annotated[Path, path_option("pruned checkpoint")],
         threshold: Annotated[Path, path_option("threshold search's JSON (the phase's start model's score)")],
         out: Annotated[Path, path_option("retrained checkpoint to write")],
         history: Annotated[Path, path_option("per-epoch training CSV")],
         work_dir: Annotated[Path, path_option("resume state, kept only while training")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    config = phase_from_params(p, phase)
    retrain(model, threshold, parse_section(p, "threshold", ThresholdConfig).checks_chance, config.retrain,
            config.layers[0] if config.freeze_earlier else None,
            batch_norm=config.retrain_batch_norm, data=data_from_params(p),
            runtime=parse_section(p, "common", RuntimeConfig),
            eval_batch_size=parse_section(p, "evaluate", EvalConfig).batch_size,
            out=out, history_csv=history, work_dir=work_dir, schedule_key=f"phases.{phase}.retrain")


if __name__ == "__main__":
    run_stage(main)
