"""Stage `scratch`: the final pruned architecture trained from a fresh initialisation on the same
number of training images (the baseline of Liu et al., ICLR 2019)."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params, parse_section, section
from mlprune.data.splits import data_from_params
from mlprune.models.arch import ModelConfig
from mlprune.pipeline.phase_config import parse_phases
from mlprune.pipeline.scratch import ScratchConfig, pruned_model_schedules, scratch
from mlprune.runtime import RuntimeConfig
from mlprune.stage_runner import ParamsFile, path_option, run_stage
from mlprune.train import TrainConfig


def main(final: Annotated[Path, path_option("final pruned checkpoint (models/<scratch.source>/model.pt)")],
         out: Annotated[Path, path_option("checkpoint to write")],
         history: Annotated[Path, path_option("per-epoch training CSV")],
         budget: Annotated[Path, path_option("training-budget JSON to write")],
         work_dir: Annotated[Path, path_option("resume state, kept only while training")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    model = parse_section(p, "model", ModelConfig)
    recipe = parse_section(p, "pretrain", TrainConfig)
    phases = parse_phases(section(p, "phases"), section(p, "phase_defaults"), model.name)
    source = parse_section(p, "scratch", ScratchConfig).source
    scratch(final, model.batch_norm, recipe, pruned_model_schedules(recipe, phases, source),
            data=data_from_params(p), runtime=parse_section(p, "common", RuntimeConfig),
            out=out, history_csv=history, budget_json=budget, work_dir=work_dir)


if __name__ == "__main__":
    run_stage(main)
