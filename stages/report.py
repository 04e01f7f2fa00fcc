"""Stage `report`: mAP vs params across phases and the scratch baseline, and the k-det table, as plot CSVs."""

from pathlib import Path
from typing import Annotated

from mlprune.atomic import write_csv
from mlprune.config import load_params
from mlprune.pipeline.report import SCRATCH, kdet_rows, reported_models, summary_rows
from mlprune.pipeline.report_figures import write_report
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(metrics_dir: Annotated[Path, path_option("folder of every stage's metrics")],
         summary: Annotated[Path, path_option("mAP-vs-params CSV to write")],
         kdet_table: Annotated[Path, path_option("k-det CSV to write")],
         report_dir: Annotated[Path, path_option("offline report folder to write (README.md + PNGs)")],
         params: ParamsFile = Path("params.yaml")) -> None:
    phases, ks = reported_models(load_params(params))
    names = ["pretrain", *phases, SCRATCH]
    write_csv(summary, summary_rows({name: metrics_dir / name / "eval.json" for name in names}))
    write_csv(kdet_table, kdet_rows(metrics_dir, ks))
    write_report(metrics_dir, phases, ks, report_dir)


if __name__ == "__main__":
    run_stage(main)
