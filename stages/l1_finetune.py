"""Stage `l1_finetune`: task loss + L1 on the phase's layers, giving Theta_L1 (+ Fig 2 data)."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params, parse_section
from mlprune.data.splits import data_from_params
from mlprune.pipeline.l1_finetune import l1_finetune
from mlprune.pipeline.phase_config import phase_from_params
from mlprune.runtime import RuntimeConfig
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(phase: Annotated[str, path_option("phase name in params.yaml `phases`")],
         start: Annotated[Path, path_option("model the phase starts from")],
         out: Annotated[Path, path_option("L1 fine-tuned checkpoint to write")],
         history: Annotated[Path, path_option("per-epoch training CSV")],
         histograms: Annotated[Path, path_option("folder of weight histogram CSVs (Fig 2)")],
         work_dir: Annotated[Path, path_option("resume state, kept only while training")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    l1_finetune(start, phase_from_params(p, phase), data=data_from_params(p),
                runtime=parse_section(p, "common", RuntimeConfig),
                out=out, history_csv=history, hist_dir=histograms, work_dir=work_dir,
                schedule_key=f"phases.{phase}.l1")


if __name__ == "__main__":
    run_stage(main)
