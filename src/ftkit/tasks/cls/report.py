"""The report of a classifier's evaluation: the terminal table and the confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path


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


def confusion_png(req, labels: list[str], where: str):
    """EvalSetup.finish of a classifier: draw the confusion matrix next to the model (or at --plot); the result
    says where. Without matplotlib, or where it cannot be written, the log says so and the evaluation stands."""
    def finish(result: dict) -> None:
        png = Path(req.plot) if req.plot else Path(req.model_dir) / f"confusion_matrix_{Path(where).stem}.png"
        title = f"{Path(req.model_dir).name} on {Path(where).name}: accuracy {result['accuracy']:.4f}"
        try:
            write_confusion_png(result["confusion_matrix"], labels, png, title)
            result["confusion_matrix_png"] = str(png)
        except ImportError:
            req.log("the confusion matrix image needs matplotlib: pip install 'ftkit[plots]'")
        except OSError as e:
            req.log(f"could not write the confusion matrix image {png}: {e.strerror or e}")
    return finish


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
