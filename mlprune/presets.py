"""Presets: params files in configs/, one per experiment.

A preset is either complete (`detection`, `classification`: the embedded defaults) or
names the preset it derives from with `base:` and states only what differs. `mlprune
preset NAME` resolves it, validates the result and writes it to params.yaml: DVC only
ever reads params.yaml, so `dvc repro`, `dvc exp run -S ...` and `dvc metrics diff` work
the same on every preset; switch presets on a branch to compare them.
"""

from __future__ import annotations

import difflib
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from mlprune.atomic import atomic_path
from mlprune.config import load_params, merge_params, parse_section, section
from mlprune.data.splits import DataConfig, resolve_classes
from mlprune.errors import ConfigError
from mlprune.evaluation.config import EvalConfig
from mlprune.models.arch import ArchSpec, ModelConfig
from mlprune.pipeline.kdet import SCHEDULE_KEY as KDET_SCHEDULE_KEY
from mlprune.pipeline.kdet import KdetConfig
from mlprune.pipeline.phase_config import PHASE_STRUCTURE, parse_phases, phase_chain
from mlprune.pipeline.pretrain import INIT_DIR, check_pretrain_schedule
from mlprune.pipeline.report import SCRATCH, kdet_name
from mlprune.pipeline.scratch import ScratchConfig
from mlprune.pipeline.training import check_augment
from mlprune.pruning.threshold import ThresholdConfig
from mlprune.runtime import RuntimeConfig
from mlprune.synthetic.scenes import SyntheticConfig
from mlprune.train import TrainConfig

CONFIGS = Path("configs")
NESTED_GITIGNORE = ("# what the pipeline builds (in DVC's cache; dvc.lock records it)\n"
                    "/tmp/\n/models/\n/results/\n/data/synthetic\n")
INIT_README = INIT_DIR / "README.md"  # what a pipeline folder's data/init holds until weights are put there
BASE_KEY = "base"
SECTIONS = ("common", "data", "synthetic", "model", "pretrain", "evaluate", "threshold", "phase_defaults", "phases",
            "kdet", "scratch")
UNKNOWN_CLASS_COUNT = 2  # an image folder that is not there yet: the fewest classes a model takes


def preset_names(configs: Path = CONFIGS) -> list[str]:
    return sorted(path.stem for path in configs.glob("*.yaml"))


def models_to_evaluate(params: dict[str, Any]) -> list[str]:
    """What the evaluate stage scores: the pretrained model, every phase's, every k-det model
    and the from-scratch baseline."""
    return ["pretrain", *section(params, "phases"), *(kdet_name(k) for k in section(params, "kdet.ks")), SCRATCH]


def check_params(params: dict[str, Any]) -> ArchSpec:
    """Parse every section the pipeline reads and check what no single section can; returns
    the spec of the model it pretrains. The `validate` stage runs this before any other."""
    check_sections(params)
    parse_section(params, "common", RuntimeConfig)
    parse_section(params, "synthetic", SyntheticConfig)
    schedule = parse_section(params, "pretrain", TrainConfig)
    parse_section(params, "threshold", ThresholdConfig)
    kdet = parse_section(params, "kdet", KdetConfig)
    data = parse_section(params, "data", DataConfig)
    model = parse_section(params, "model", ModelConfig)
    phases = parse_phases(section(params, "phases"), section(params, "phase_defaults"), model.name)
    phase_chain(phases, parse_section(params, "scratch", ScratchConfig).source, "scratch.source")
    # An image folder that leaves `classes` empty and is not there yet (a preset's placeholder
    # root) has no class names: check the model with the fewest classes it can take.
    classes = resolve_classes(data) if Path(data.root).is_dir() else data.classes
    spec = model.to_spec(classes or [f"class{i}" for i in range(UNKNOWN_CLASS_COUNT)])
    data.check_model_task(spec.task, spec.model)
    check_pretrain_schedule(schedule, spec.batch_norm, started=model.init is not None)
    for key, augment in augmentations(params):
        check_augment(augment, data.task, key)
    check_kdet(kdet, list(phases), spec)
    expected = models_to_evaluate(params)
    if len(set(expected)) != len(expected):
        raise ConfigError(f"phases: a phase may not be called pretrain or kdet_k<k> (models/ would hold two "
                          f"models of one name): {expected}")
    if parse_section(params, "evaluate", EvalConfig).models != expected:
        raise ConfigError(f"evaluate.models: must list pretrain, every phase, every k-det model and scratch: "
                          f"{expected}")
    return spec


def check_sections(params: dict[str, Any]) -> None:
    """A misspelt section (`pretrian:`) would be ignored, and the defaults would train."""
    for name in params:
        if name not in SECTIONS:
            close = difflib.get_close_matches(str(name), SECTIONS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{name}: unknown section ({hint}the sections are {', '.join(SECTIONS)})")


def augmentations(params: dict[str, Any]) -> list[tuple[str, Any]]:
    """(params key of a schedule, its `augment` list) for every schedule that states one,
    named where it is written (phase_defaults or the phase)."""
    schedules = {"pretrain": params["pretrain"], KDET_SCHEDULE_KEY: params["kdet"].get("retrain", {})}
    for name in ("l1", "retrain"):
        schedules[f"phase_defaults.{name}"] = params["phase_defaults"].get(name, {})
        schedules.update({f"phases.{phase}.{name}": value.get(name, {}) for phase, value in params["phases"].items()})
    return [(key, schedule["augment"]) for key, schedule in schedules.items()
            if isinstance(schedule, dict) and "augment" in schedule]


def check_kdet(kdet: KdetConfig, phases: list[str], spec: ArchSpec) -> None:
    """With k-det models to make, `kdet.source` names a phase (DVC would report a missing
    models/<source>/model.pt) and every k keeps between 1 and all of the model's detection sources."""
    if kdet.ks and kdet.source not in phases:
        raise ConfigError(f"kdet.source: must name a phase ({', '.join(phases)}), got {kdet.source!r}")
    if len(set(kdet.ks)) != len(kdet.ks):
        raise ConfigError(f"kdet.ks: lists a k more than once: {kdet.ks}")
    if kdet.ks and not spec.sources:
        raise ConfigError(f"kdet.ks: {spec.model} has no detection sources to cut; set kdet.ks: []")
    too_many = [k for k in kdet.ks if k > len(spec.sources)]
    if too_many:
        raise ConfigError(f"kdet.ks: {spec.model} has {len(spec.sources)} detection sources, so k must be in "
                          f"1..{len(spec.sources)}, got {too_many[0]}")


def resolve_preset(name: str, configs: Path = CONFIGS) -> dict[str, Any]:
    """The complete params of preset `name`: its `base` chain merged, `evaluate.models` filled in."""
    params = _read_preset(name, configs, seen=())
    params["evaluate"] = {**params.get("evaluate", {}), "models": models_to_evaluate(params)}
    return params


def _read_preset(name: str, configs: Path, seen: tuple[str, ...]) -> dict[str, Any]:
    source = configs / f"{name}.yaml"
    if not source.is_file():
        raise ConfigError(f"preset {name!r}: no {source}; presets are {', '.join(preset_names(configs))}")
    if name in seen:
        raise ConfigError(f"{source}: base: presets derive from each other in a loop ({' -> '.join(seen + (name,))})")
    params = load_params(source)
    base = params.pop(BASE_KEY, None)
    if base is None:
        return params
    if not isinstance(base, str):
        raise ConfigError(f"{source}: base: expected a preset name, got {base!r}")
    inherited = _read_preset(base, configs, seen + (name,))
    if "phase_defaults" in params:
        inherited = phase_structure_only(inherited)
    return merge_params(inherited, params)


def phase_structure_only(params: dict[str, Any]) -> dict[str, Any]:
    """`params` with each phase cut to its structure (`PHASE_STRUCTURE`).

    Why: a preset that sets its own `phase_defaults` trains on other data with another
    recipe, and the base's per-phase tuning (the detection default's deeper phase-2
    retraining, its milder phase 1) was measured against the base's; merged in key by key,
    it would silently override the derived preset's recipe in those phases. A preset that
    keeps the base's `phase_defaults` keeps its per-phase tuning too."""
    phases = params.get("phases")
    if not isinstance(phases, dict):
        return params  # left for check_params to name
    return {**params, "phases": {name: {key: value for key, value in phase.items() if key in PHASE_STRUCTURE}
                                 if isinstance(phase, dict) else phase for name, phase in phases.items()}}


def apply_preset(name: str, params_file: Path = Path("params.yaml"), configs: Path = CONFIGS) -> Path:
    """Validate preset `name`, then replace `params_file` with it: a complete preset is copied
    as it is (comments included), a derived one written resolved."""
    source = configs / f"{name}.yaml"
    params = resolve_preset(name, configs)
    try:
        check_params(params)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    with atomic_path(params_file) as tmp:
        if load_params(source) != params:
            header = f"# Generated by `mlprune preset {name}` from {source}; edit it or re-run that command.\n"
            tmp.write_text(header + yaml.safe_dump(params, sort_keys=False, width=120))
        else:
            shutil.copyfile(source, tmp)
    return source


def nested_pipeline(dvc_yaml: str, depth: int = 1) -> str:
    """The project's dvc.yaml for a pipeline in a folder `depth` levels below the root: its
    code (`stages/`, `mlprune/`) is the root's, everything else (params.yaml, data, models,
    metrics) is the folder's own."""
    return re.sub(r"(?m)(^\s*- |\bpython )(stages|mlprune)/", rf"\g<1>{'../' * depth}\2/", dvc_yaml)


def write_nested_pipeline(name: str, folder: Path, root: Path = Path(".")) -> Path:
    """Preset `name` as a pipeline of its own in `folder` (params.yaml, dvc.yaml, data/init/),
    next to the root's: `dvc repro` in `folder` runs it, `dvc metrics show` at the root shows
    both. Returns the preset file."""
    depth = len(folder.resolve().relative_to(root.resolve()).parts)
    if depth == 0:
        raise ConfigError(f"preset --dir: {folder} is the project root; use `mlprune preset {name}` there")
    (folder / INIT_README.parent).mkdir(parents=True, exist_ok=True)
    source = apply_preset(name, folder / "params.yaml", root / CONFIGS)
    with atomic_path(folder / "dvc.yaml") as tmp:
        tmp.write_text(f"# Generated by `mlprune preset {name} --dir {folder}` from the root's dvc.yaml; re-run that "
                       "command after changing it (tests/test_presets.py checks they agree).\n"
                       + nested_pipeline((root / "dvc.yaml").read_text(), depth))
    shutil.copyfile(root / INIT_README, folder / INIT_README)
    (folder / ".gitignore").write_text(NESTED_GITIGNORE)
    return source
