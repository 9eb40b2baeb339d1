"""The model card: README.md in the Hugging Face format, written into every saved model directory.

Everything comes from the directory itself (recipe.yaml, metrics.json, config.json or adapter_config.json) and the
model's task entry (resolved by the workflow that writes the card), so the card of a run, of an export and the copy
`ftkit push` uploads (with the repo id in its snippets) are drawn the same way, offline. The metadata goes through huggingface_hub's ModelCardData / EvalResult, which also
writes `model-index`; the text is ours, because the hub's default template is mostly empty sections.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import yaml

from ftkit.engine.curves import COUNTS
from ftkit.paths import PACKAGE_SCHEME, is_local, resolve_package_path
from ftkit.task_entry import PRETRAIN, TaskEntry
from ftkit.wording import metric, rate

CARD = "README.md"
MARK = "<!-- written by ftkit -->"  # a README.md without it is the user's: never replaced


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _recipe(model_dir: Path) -> dict:
    try:
        return yaml.safe_load((model_dir / "recipe.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _hub_ids(spec) -> list[str]:
    """The hub dataset ids among a recipe's data files (local files are not datasets the hub knows)."""
    items = spec if isinstance(spec, list) else [spec] if spec else []
    paths = [x if isinstance(x, str) else (x or {}).get("path") for x in items]
    return [p for p in paths if isinstance(p, str) and not p.startswith(PACKAGE_SCHEME) and not is_local(p)]


def _base_license(base: Optional[str]) -> Optional[str]:
    """The license the base model declares: its local card's metadata, or a GGUF file's general.license."""
    if not base:
        return None

    try:
        path = Path(resolve_package_path(base))
    except Exception:  # noqa: BLE001 (a base that cannot be resolved declares nothing)
        return None
    if path.suffix == ".gguf" and path.is_file():
        try:
            from gguf import GGUFReader

            field = GGUFReader(str(path)).fields.get("general.license")
            return bytes(field.parts[field.data[0]]).decode() if field else None
        except Exception:  # noqa: BLE001 (gguf missing or a file it cannot read: no license known)
            return None
    card = path / CARD
    if card.is_file():
        text = card.read_text(errors="replace")
        if text.startswith("---"):
            try:
                meta = yaml.safe_load(text.split("---", 2)[1])
                license_ = meta.get("license") if isinstance(meta, dict) else None  # a '---' rule is not metadata
                return license_ if isinstance(license_, str) else None
            except yaml.YAMLError:
                return None
    return None


def _scalars(metrics: Optional[dict]) -> dict:
    """The scores among a run's metrics (not what the evaluation counted: engine/curves.COUNTS)."""
    return {k: v for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in COUNTS}


SEQ2SEQ_USAGE = """```python
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{where}")
model = AutoModelForSeq2SeqLM.from_pretrained("{where}").eval()
batch = tokenizer(["A source text (with the recipe's seq2seq.source_prefix, if it has one)."], return_tensors="pt")
out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])  # decoding: generation_config.json
print(tokenizer.batch_decode(out, skip_special_tokens=True)[0])
```

or, a text per line: `ftkit predict --model {where} FILE` (`ftkit eval --model {where} --data SOURCE,TARGET` scores it)."""

QA_USAGE = """```python
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{where}")
model = AutoModelForQuestionAnswering.from_pretrained("{where}").eval()
question = "Who wrote Hamlet?"
context = "Hamlet is a tragedy written by William Shakespeare around 1600."
enc = tokenizer(question, context, truncation="only_second", max_length=384, return_offsets_mapping=True,
                return_tensors="pt")
offsets = enc.pop("offset_mapping")[0].tolist()
with torch.no_grad():
    out = model(**enc)
in_context = torch.tensor([s == 1 for s in enc.sequence_ids(0)])
n = len(in_context)
ok = torch.ones(n, n, dtype=torch.bool).triu().tril(29) & in_context[:, None] & in_context[None, :]  # end >= start, <= 30 tokens
scores = (out.start_logits[0][:, None] + out.end_logits[0][None, :]).masked_fill(~ok, float("-inf"))
start, end = divmod(int(scores.argmax()), n)
print(context[offsets[start][0]:offsets[end][1]])
```

For long contexts (overlapping windows), SQuAD v2 models and JSON-lines input: `ftkit predict --model {where}`."""


def _usage(task: Optional[TaskEntry], where: str, adapter: Optional[dict]) -> str:
    if adapter is not None:
        cls = {"CAUSAL_LM": "AutoPeftModelForCausalLM", "SEQ_CLS": "AutoPeftModelForSequenceClassification",
               "TOKEN_CLS": "AutoPeftModelForTokenClassification", "QUESTION_ANS": "AutoPeftModelForQuestionAnswering",
               "SEQ_2_SEQ_LM": "AutoPeftModelForSeq2SeqLM"}.get(
            adapter.get("task_type"), "AutoPeftModel")
        return (f"A PEFT adapter ({adapter.get('peft_type', '?').lower()}) on `{adapter.get('base_model_name_or_path')}`:\n\n"
                f"```python\nfrom peft import {cls}\n\nmodel = {cls}.from_pretrained(\"{where}\")\n```\n\n"
                f"or merged into a plain model: `ftkit export --model {where} --output merged/`.")
    if task is None:
        return f"```python\nfrom transformers import AutoModel\n\nmodel = AutoModel.from_pretrained(\"{where}\")\n```"
    if task.pipeline_tag is None:
        return (f"```python\nfrom transformers import {task.auto_class}\n\nmodel = {task.auto_class}.from_pretrained(\"{where}\")\n```\n\n"
                f"Its encoder starts a classifier: `model.from_pretrained: {where}` in an `ftkit finetune` recipe "
                f"(the decoder is dropped, a new head is added).")
    if task.encoder_decoder:  # transformers 5 removed the translation / summarization pipelines
        return SEQ2SEQ_USAGE.replace("{where}", where)
    if task.pipeline_tag == "question-answering":  # transformers 5 removed this pipeline: the few lines it ran
        return QA_USAGE.replace("{where}", where)
    example = {"text-generation": '"Once upon a time"', "fill-mask": 'f"Paris is the {pipe.tokenizer.mask_token} of France."',
               "image-classification": 'Image.open("picture.png")'}.get(task.pipeline_tag, '"This is great!"')
    pil = "from PIL import Image\n" if task.images else ""
    return (f"```python\n{pil}from transformers import pipeline\n\npipe = pipeline(\"{task.pipeline_tag}\", model=\"{where}\")\n"
            f"print(pipe({example}))\n```")


def render(model_dir: Path, task: Optional[TaskEntry], where: Optional[str] = None, origin: Optional[str] = None,
           base: Optional[str] = None, usage: Optional[str] = None) -> str:
    """The card text of the model saved in `model_dir`, a model of `task` (None: of no task ftkit knows); `where`: how users reach it (a repo id; default: the path);
    `origin`: how it was made when no training recipe says (an export, a compression); `base`: what it came from;
    `usage`: how to load it, for a format transformers does not read (the int8 models of `ftkit compress quantize`)."""
    from huggingface_hub import EvalResult, ModelCardData

    model_dir = Path(model_dir)
    where, name = where or str(model_dir), model_dir.resolve().name
    recipe, summary = _recipe(model_dir), _read_json(model_dir / "metrics.json")
    config, adapter = _read_json(model_dir / "config.json"), None
    if (model_dir / "adapter_config.json").is_file():
        adapter = _read_json(model_dir / "adapter_config.json")
    name = recipe.get("task") or summary.get("task")
    base = base or (recipe.get("model") or {}).get("from_pretrained") or (adapter or {}).get("base_model_name_or_path")
    data = recipe.get("data") or {}
    best, final = _scalars(summary.get("best_metrics")), _scalars(summary.get("final_metrics"))
    dataset = data.get("validation") or data.get("train")
    dataset_name = Path(dataset if isinstance(dataset, str) else "data").name
    evals = [EvalResult(task_type=task.pipeline_tag or task.name if task else "other", dataset_type=dataset_name,
                        dataset_name=f"{dataset_name} (validation)", dataset_split="validation", metric_type=k,
                        metric_value=round(float(v), 6))
             for k, v in best.items()]
    meta = ModelCardData(
        library_name="peft" if adapter is not None else "ftkit" if usage else "transformers",
        pipeline_tag=task.pipeline_tag if task else None,
        base_model=base if base and not base.startswith(PACKAGE_SCHEME) and not is_local(base) else None,
        datasets=_hub_ids(data.get("train")) + _hub_ids(data.get("validation")) or None,
        license=_base_license(base), tags=["ftkit"] + ([task.name] if task else []),
        model_name=name if evals else None, eval_results=evals or None)
    arch = (config.get("architectures") or ["a model"])[0] if not adapter else f"{adapter.get('peft_type', 'PEFT')} adapter"
    origin = origin or (f"fine-tuned from `{base}`" if base else "trained from random weights" if recipe else "saved")
    what = task.help if task else "a transformers model"
    params = f", {summary['parameters'] / 1e6:.2f}M parameters" if summary.get("parameters") else ""
    lines = [MARK, f"# {name}", "",
             f"{arch}{params}, {origin}: {what}. Trained with [ftkit](https://github.com/ftkit/ftkit) "
             f"(`{_command(task)}`).", ""]
    if best or final:
        lines += ["## Evaluation", "", f"On the validation data ({_data_text(dataset)}); "
                  f"{summary.get('saved', 'the saved model')} is the one in this directory.", "",
                  "| metric | best (step " + str(summary.get("best_step")) + ") | final |", "|---|---|---|"]
        for k in dict.fromkeys([*best, *final]):
            lines.append(f"| {k} | {_fmt(best.get(k))} | {_fmt(final.get(k))} |")
        lines.append("")
    if summary:
        pace = (f"{summary.get('tokens', 0):,} tokens ({summary.get('tokens_per_s', 0):,.0f}/s)" if summary.get("tokens")
                else f"{summary.get('examples', 0):,} examples ({rate(summary.get('examples_per_s', 0), 'examples', ',.1f')})")
        lines += ["## Training", "", f"- data: {_data_text(data.get('train'))}",
                  f"- {summary.get('steps')} steps, {pace}, {summary.get('train_runtime_s', 0):,.0f} s on "
                  f"{summary.get('world_size', 1)} process(es), precision {(recipe.get('train') or {}).get('precision', '?')}", ""]
    if recipe:
        lines += ["<details><summary>The recipe (resolved: every default)</summary>", "", "```yaml",
                  yaml.safe_dump(recipe, sort_keys=False).rstrip(), "```", "", "</details>", ""]
    lines += ["## How to use", "", usage or _usage(task, where, adapter), ""]
    return f"---\n{meta.to_yaml()}\n---\n" + "\n".join(lines)


def _command(task) -> str:
    if task is None:
        return "ftkit"
    return f"ftkit {'pretrain' if task.family == PRETRAIN else 'finetune'} --task {task.name}"


def _data_text(spec) -> str:
    items = spec if isinstance(spec, list) else [spec] if spec else []
    names = [Path(x if isinstance(x, str) else (x or {}).get("path", "?")).name for x in items]
    return ", ".join(f"`{n}`" for n in names) or "a split of the training data"


def _fmt(v) -> str:
    return "-" if v is None else metric(v)


def write(model_dir: Path, task: Optional[TaskEntry], where: Optional[str] = None, log=print, origin: Optional[str] = None,
          base: Optional[str] = None, usage: Optional[str] = None) -> Optional[Path]:
    """Write (or refresh) README.md; a README.md that ftkit did not write is left alone (said once). The card is a
    side product: a failure to write it is said in one line and never fails the run or export that made the model."""
    path = Path(model_dir) / CARD
    if path.is_file() and MARK not in path.read_text(errors="replace"):
        log(f"{path}: not ftkit's model card; left as it is")
        return None
    try:
        path.write_text(render(model_dir, task, where, origin, base, usage))
    except Exception as e:  # noqa: BLE001 (an odd base-model card, a full disk: the model itself is saved)
        log(f"{path}: model card not written ({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''})")
        return None
    return path
