"""`ftkit eval` for classifiers: accuracy, macro-F1, Matthews correlation, per-class precision / recall,
the confusion matrix (as numbers and as a PNG), on a file or on the validation data of the model's recipe.

The evaluation file is read with the data settings of the recipe the model was trained with
(text / pair / label columns, column names of headerless files, label_map), which `ftkit eval`
options can override for a file laid out differently (e.g. AG News' test CSV).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ftkit.data import labeled
from ftkit.engine.accel import make_accelerator
from ftkit.engine.batches import eval_batches, log_sample
from ftkit.engine.loop import evaluate
from ftkit.errors import UserError
from ftkit.models.classifier import checkpoint_labels, input_names, max_positions
from ftkit.recipe.schema import Recipe
from ftkit.tasks.cls import SequenceClassification
from ftkit.workflows.finetune import sorted_by_length


def run(model_dir: str, path: str, recipe: Recipe, data: Optional[str], batch_size: int = 32,
        max_batches: Optional[int] = None, precision: str = "fp32", plot: Optional[str] = None, log=print) -> dict:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ftkit.models import saved

    hf_logging.disable_progress_bar()
    model = saved.load_model(path, "cls", log=log)  # plain, PEFT adapter or int8
    labels = checkpoint_labels(model.config)
    if labels is None:
        raise UserError(f"--model: {model_dir} is not a sequence classifier (architectures: "
                        f"{', '.join(model.config.architectures or ['none'])}); fine-tune it first with `ftkit finetune`")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if data is not None:
        rows = labeled.load_rows(data, recipe.data, "--data", log=log)
    else:
        _, rows = labeled.train_and_validation(recipe.data, recipe.train.seed, log)
    labeled.check_known(rows, labels, "the model")
    cap = min(recipe.data.block_size, max_positions(model.config) or recipe.data.block_size)
    items = sorted_by_length(labeled.encode(rows, tokenizer, cap, {n: i for i, n in enumerate(labels)},
                                            input_names(model, tokenizer)))
    acc = make_accelerator(precision)
    model = acc.prepare(model)
    task = SequenceClassification(tokenizer, labels)
    batches = eval_batches(items, batch_size, task.eval_collate, 0, limit=max_batches)
    note = log_sample(batches.sample, "--max-batches", log)
    metrics = evaluate(acc, model, task, batches, log)
    where = data if data is not None else "validation data of its recipe"
    result = {"model": os.path.normpath(model_dir), "task": "cls", "data": where, "labels": labels,
              "skipped_empty": len(rows.skipped), **metrics, **({"eval_sample": note} if note else {})}
    png = Path(plot) if plot else Path(model_dir) / f"confusion_matrix_{Path(data).stem if data else 'validation'}.png"
    try:
        write_confusion_png(metrics["confusion_matrix"], labels, png,
                            title=f"{Path(model_dir).name} on {Path(data).name if data else 'validation'}: "
                                  f"accuracy {metrics['accuracy']:.4f}")
        result["confusion_matrix_png"] = str(png)
    except OSError as e:
        log(f"could not write the confusion matrix image {png}: {e.strerror or e}")
    return result


def write_confusion_png(matrix: list[list[int]], labels: list[str], path: Path, title: str = "") -> None:
    """A labelled heat map of the confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    import numpy as np

    m = np.asarray(matrix)
    n = len(labels)
    size = max(4.0, 0.7 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        shares = m / np.maximum(m.sum(axis=1, keepdims=True), 1)  # colour by recall, so small classes show too
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), labels=labels, rotation=45 if n > 3 else 0, ha="right" if n > 3 else "center")
        ax.set_yticks(range(n), labels=labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{m[i, j]:,}", ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
        if title:
            ax.set_title(title, fontsize=10)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def render_table(r: dict) -> str:
    """The eval result as text: headline metrics, a per-class table, the confusion matrix."""
    heads = [("model", r["model"]), ("data", r["data"]),
             ("examples", f"{r['examples']:,}" + (f" ({r['skipped_empty']:,} empty texts skipped)" if r.get("skipped_empty") else "")),
             ("accuracy", f"{r['accuracy']:.4f}"), ("macro-F1", f"{r['f1']:.4f}"), ("MCC", f"{r['mcc']:.4f}")]
    if "binary_f1" in r:  # GLUE's F1 for two classes: that of class id 1
        heads.append((f"F1 ({r['labels'][1]})", f"{r['binary_f1']:.4f}"))
    heads.append(("loss", f"{r['loss']:.4f}"))
    hw = max(len(k) for k, _ in heads)
    lines = [f"{k:<{hw}}  {v}" for k, v in heads] + [""]
    w = max(8, *(len(n) for n in r["labels"]))
    lines.append(f"{'class':<{w}}  precision  recall     f1  support")
    for name, s in r["per_class"].items():
        lines.append(f"{name:<{w}}  {s['precision']:>9.4f}  {s['recall']:>6.4f}  {s['f1']:>5.4f}  {s['support']:>7,}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)"]
    cw = max(w, *(len(f"{v:,}") for row in r["confusion_matrix"] for v in row))
    lines.append(" " * (w + 2) + "  ".join(f"{n:>{cw}}" for n in r["labels"]))
    for name, row in zip(r["labels"], r["confusion_matrix"]):
        lines.append(f"{name:<{w}}  " + "  ".join(f"{v:>{cw},}" for v in row))
    if r.get("confusion_matrix_png"):
        lines += ["", f"confusion matrix image: {r['confusion_matrix_png']}"]
    return "\n".join(lines)
