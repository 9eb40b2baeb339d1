"""Distillation task: the loss is alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE, summed per target;
the teacher gets no gradient; students are smaller than their teachers (or refused)."""

import pytest
import torch
import torch.nn.functional as F

from ftkit.compress.student import make_student
from ftkit.errors import UserError
from ftkit.recipe.schema import DistillSection
from ftkit.tasks.cls.task import SequenceClassification
from ftkit.tasks.distill import Distillation
from ftkit.tasks.lm.clm import CausalLM

from tiny_models import LAYERS, minilm_tokenizer, tiny_bert_classifier, tiny_gpt


def manual(student_logits, teacher_logits, labels, t, alpha):
    soft = sum(F.kl_div(F.log_softmax(s / t, -1), F.softmax(q / t, -1), reduction="sum")
               for s, q in zip(student_logits, teacher_logits))
    return alpha * t * t * soft + (1 - alpha) * F.cross_entropy(student_logits, labels, reduction="sum")


def test_cls_loss_matches_the_formula_and_the_teacher_stays_fixed():
    teacher = tiny_bert_classifier(seed=0)
    student = make_student(teacher, DistillSection(student_layers=1), log=lambda m: None)
    assert student.config.num_hidden_layers == 1 and len(student.bert.encoder.layer) == 1
    assert len(teacher.bert.encoder.layer) == LAYERS  # a copy: the teacher keeps its layers
    task = Distillation(SequenceClassification(minilm_tokenizer(), ["negative", "positive"]), teacher, 3.0, 0.7)
    batch = {"input_ids": torch.randint(1, 64, (4, 9)), "attention_mask": torch.ones(4, 9, dtype=torch.long),
             "labels": torch.tensor([0, 1, 1, 0])}
    student.eval()
    loss = task.loss(student, batch)
    with torch.no_grad():
        t_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    s_logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert loss.item() == pytest.approx(manual(s_logits, t_logits, batch["labels"], 3.0, 0.7).item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    # alpha = 0: plain cross-entropy (the cls task's own loss)
    hard = Distillation(task.base, teacher, 3.0, 0.0).loss(student, batch)
    assert hard.item() == pytest.approx(task.base.loss(student, batch).item(), rel=1e-6)


def test_clm_loss_is_per_token_and_same_student_gives_zero_kl():
    teacher = tiny_gpt(seed=0).eval()
    ids = torch.randint(1, 64, (2, 12))
    same = Distillation(CausalLM(), teacher, 2.0, 1.0)
    assert same.loss(teacher, {"input_ids": ids}).item() == pytest.approx(0.0, abs=1e-4)  # student == teacher
    student = make_student(teacher, DistillSection(student_config={"n_layer": 1, "n_embd": 16, "n_head": 2}), log=lambda m: None)
    assert student.config.n_layer == 1 and same.count_targets({"input_ids": ids}) == 2 * 11
    loss = Distillation(CausalLM(), teacher, 2.0, 0.5).loss(student, {"input_ids": ids})
    assert loss.item() > 0


def test_students_larger_than_their_teacher_are_refused():
    teacher = tiny_bert_classifier()
    with pytest.raises(UserError, match="not smaller than its teacher of 2"):
        make_student(teacher, DistillSection(student_layers=2))
    with pytest.raises(UserError, match="larger than its teacher"):
        make_student(teacher, DistillSection(student_config={"intermediate_size": 512}))
    with pytest.raises(UserError, match="exactly one"):
        make_student(teacher, DistillSection())


def test_listed_layers_keep_exactly_those_teacher_layers():
    teacher = tiny_bert_classifier(seed=0)
    student = make_student(teacher, DistillSection(student_layers=[1]), log=lambda m: None)
    assert student.config.num_hidden_layers == 1
    torch.testing.assert_close(student.bert.encoder.layer[0].state_dict(), teacher.bert.encoder.layer[1].state_dict())
    # a causal LM keeps generating: the kept layers count their cache slots from 0
    gpt = tiny_gpt(seed=0).eval()
    small = make_student(gpt, DistillSection(student_layers=[1]), log=lambda m: None).eval()
    out = small.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert out.shape == (1, 7)
    torch.testing.assert_close(small.transformer.h[0].mlp.c_fc.weight, gpt.transformer.h[1].mlp.c_fc.weight)


@pytest.mark.parametrize("layers", [[1, 0], [0, 0], [2], [], [0, 1]])
def test_bad_layer_lists_are_refused(layers):
    with pytest.raises(UserError, match="distill.student_layers"):
        make_student(tiny_bert_classifier(), DistillSection(student_layers=layers), log=lambda m: None)
