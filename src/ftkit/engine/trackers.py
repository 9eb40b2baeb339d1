"""Experiment trackers (`train.report_to`) through accelerate's tracker API: TensorBoard, W&B, MLflow and the
others accelerate knows. Checked before the run starts (a name accelerate does not know, a package that is not
installed: one line naming the extra); hyper-parameters (the resolved recipe, flattened) logged once; metrics at
each log step and evaluation (engine/metrics_log.py). Their files go under `output_dir/logs/` where the tracker
writes locally (TensorBoard, W&B offline); MLflow follows MLFLOW_TRACKING_URI, as MLflow users expect.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional, Sequence

from ftkit.errors import UserError

LOGS = "logs"
# tracker -> (module it imports, the ftkit extra that installs it; None: not one of ours)
PACKAGES = {"tensorboard": ("tensorboard", "logging"), "wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow"),
            "comet_ml": ("comet_ml", None), "aim": ("aim", None), "clearml": ("clearml", None),
            "dvclive": ("dvclive", None), "swanlab": ("swanlab", None), "trackio": ("trackio", None)}


def known() -> list[str]:
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    return sorted(LOGGER_TYPE_TO_CLASS)


def resolve(report_to: Optional[Sequence[str]]) -> list[str]:
    """The trackers a run logs to. None (the default): TensorBoard when it is installed, else none."""
    if report_to is None:
        return ["tensorboard"] if importlib.util.find_spec("tensorboard") else []
    names = list(dict.fromkeys(report_to))
    for name in names:
        if name not in known():
            raise UserError(f"train.report_to: unknown tracker '{name}'; expected some of {', '.join(known())} "
                            f"(or [] for none)")
        module, extra = PACKAGES.get(name, (name, None))
        if importlib.util.find_spec(module) is None:
            how = f"pip install 'ftkit[{extra}]'" if extra else f"pip install {module}"
            raise UserError(f"train.report_to: {name} needs the {module} package, which is not installed: {how}")
    return names


def hparams(config: dict, prefix: str = "") -> dict:
    """A nested recipe as flat `section.key: value` pairs of the types every tracker takes (str, int, float, bool)."""
    flat = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(hparams(v, key + "."))
        elif isinstance(v, (bool, int, float, str)):
            flat[key] = v
        else:
            flat[key] = str(v)
    return flat


def start(accelerator, out: Path, config: Optional[dict]) -> bool:
    """Start the accelerator's trackers (set by `make_accelerator(trackers=)`); True when there are any."""
    if not accelerator.log_with:
        return False
    init_kwargs = {"wandb": {"dir": str(out / LOGS), "name": out.name}}
    (out / LOGS).mkdir(parents=True, exist_ok=True)
    accelerator.init_trackers(out.name, config=hparams(config) if config else None, init_kwargs=init_kwargs)
    return True
