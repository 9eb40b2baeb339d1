"""A run that learned nothing says so at its end, with the causes to check (workflows/diagnose.py); one that
learned says nothing."""

import json
from pathlib import Path

import pytest

from ftkit.tasks.cls.task import SequenceClassification
from ftkit.tasks.ner.task import TokenClassification
from ftkit.workflows.diagnose import diagnose, loss_not_falling

from conftest import DATA, need, run_cli, write_recipe
from tiny_models import MINILM, minilm_tokenizer

WNUT = DATA / "wnut17"


def conll_slice(src: Path, dst: Path, sentences: int) -> Path:
    blocks = [b for b in need(src).read_text(encoding="utf-8").replace("\t\n", "\n").split("\n\n") if b.strip()]
    dst.write_text("\n\n".join(blocks[:sentences]) + "\n", encoding="utf-8")
    return dst


def write_log(out: Path, losses: list[float]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_log.jsonl").write_text("".join(json.dumps({"step": 5 * (i + 1), "loss": l}) + "\n" for i, l in enumerate(losses)))
    return out


def test_one_class_everywhere_is_named():
    task = SequenceClassification(minilm_tokenizer(), ["negative", "positive"])
    assert task.nothing_learned({"confusion_matrix": [[30, 0], [34, 0]]}) == \
        "every one of the 64 validation examples was predicted 'negative'"
    assert task.nothing_learned({"confusion_matrix": [[20, 10], [4, 30]]}) is None


def test_no_entity_predicted_is_named():
    task = TokenClassification(minilm_tokenizer(), ["O", "B-PER", "I-PER"])
    assert "no entity predicted in 60 validation sentences (41 entities there)" in \
        task.nothing_learned({"predicted_entities": 0, "entities": 41, "sentences": 60})
    assert task.nothing_learned({"predicted_entities": 3, "entities": 41, "sentences": 60}) is None
    assert task.nothing_learned({"predicted_entities": 0, "entities": 0, "sentences": 60}) is None  # nothing to find


def test_loss_not_falling(tmp_path):
    assert loss_not_falling(write_log(tmp_path / "flat", [2.30, 2.31, 2.29])) == \
        "the training loss did not fall (2.3000 at step 5, 2.2900 at step 15)"
    assert loss_not_falling(write_log(tmp_path / "falls", [2.30, 1.9, 1.2])) is None
    assert loss_not_falling(write_log(tmp_path / "one", [2.30])) is None


def test_causes_name_the_vocabulary_only_when_it_is_poor(tmp_path):
    class Recipe:
        class train:
            lr = 3e-4
    task = TokenClassification(minilm_tokenizer(), ["O", "B-PER", "I-PER"])
    summary = {"steps": 60, "best_metrics": {"predicted_entities": 0, "entities": 9, "sentences": 5}}
    out = write_log(tmp_path, [1.0, 0.5])
    poor = {"words": 5000, "unk_share": 0.0, "many_pieces_share": 0.3, "pieces_per_word": 2.1}
    good = {"words": 5000, "unk_share": 0.0, "many_pieces_share": 0.02, "pieces_per_word": 1.14}
    said = diagnose(task, summary, Recipe, out, poor)
    assert said.startswith("this run learned nothing: no entity predicted in 5 validation sentences")
    assert "60 ran: raise train.max_steps" in said and "train.lr 0.0003" in said and "2.10 pieces per word" in said
    assert "vocabulary" not in diagnose(task, summary, Recipe, out, good)
    assert diagnose(task, {"steps": 60, "best_metrics": {"predicted_entities": 2, "entities": 9}}, Recipe, out, poor) is None


@pytest.mark.e2e
def test_a_run_that_learns_nothing_says_so(tmp_path):
    """MiniLM on WNUT-17 with a learning rate 10^5 times too small: the loss stays where the new head started, and
    the run says so, with the causes to check (English text: the vocabulary is not named)."""
    recipe = {
        "task": "ner", "output_dir": str(tmp_path / "run"), "model": {"from_pretrained": MINILM},
        "data": {"train": str(conll_slice(WNUT / "wnut17train.conll", tmp_path / "train.conll", 200)),
                 "validation_split": 0.2, "block_size": 48},
        "train": {"max_steps": 6, "batch_size": 16, "lr": 3e-9, "eval_every": 3, "log_every": 2, "precision": "fp32"},
    }
    code, _, err = run_cli("finetune", "--task", "ner", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    assert "vocabulary: 0.0% of words [UNK]" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("warning: this run learned nothing: the training loss did not fall ("), last and "train.lr 3e-09" in last and "vocabulary" not in last
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["nothing_learned"] == last[len("warning: "):]
