"""Preference data: the layouts, the HH prompt rule (longest common prefix ending with "\\n\\nAssistant:"), the split by
prompt, the chat-template tokens; the batch: chosen and rejected rows together, the prompt masked, log-probs summed
over the reply tokens only; step 1's loss ln 2 from a reference equal to the policy; the sanity guards.
The real hh-rlhf file is read for counts only: its text is offensive by design and never printed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ftkit.data.splits import group_held_out, held_out
from ftkit.errors import UserError
from ftkit.recipe.schema import DataSection
from ftkit.tasks.preference import data
from ftkit.tasks.preference.section import DpoSection
from ftkit.tasks.preference.task import Preference

from conftest import DATA, need

COLS = DpoSection()


def _pairs(rows) -> data.Pairs:
    out = data.Pairs()
    for i, r in enumerate(rows, 1):
        data.make_pair(r, f"f.jsonl:{i}", COLS, out)
    return out


def test_hh_dialogue_split_at_the_longest_common_prefix():
    c = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: a riddle?\n\nAssistant: Yes: what runs but never walks?"
    r = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: a riddle?\n\nAssistant: No."
    p = _pairs([{"chosen": c, "rejected": r}])
    assert p.items[0].prompt == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                 {"role": "user", "content": "a riddle?"}]
    assert (p.items[0].chosen, p.items[0].rejected, p.continued) == ("Yes: what runs but never walks?", "No.", 0)
    # a reply that continues the dialogue: the last-marker rule would give two prompts; the common prefix gives one
    c2 = "\n\nHuman: hi\n\nAssistant: ok\n\nHuman: and?\n\nAssistant: more"
    p = _pairs([{"chosen": c2, "rejected": "\n\nHuman: hi\n\nAssistant: no"}])
    assert p.items[0].prompt == [{"role": "user", "content": "hi"}] and p.continued == 1
    assert p.items[0].chosen == "ok\n\nHuman: and?\n\nAssistant: more"


def test_the_other_layouts_and_bad_rows():
    msgs = [{"role": "user", "content": "2+2?"}]
    p = _pairs([{"prompt": "2+2?", "chosen": "4", "rejected": "5"},
                {"prompt": msgs, "chosen": [{"role": "assistant", "content": "4"}], "rejected": "5"},
                {"chosen": [*msgs, {"role": "assistant", "content": "4"}], "rejected": [*msgs, {"role": "assistant", "content": "5"}]}])
    assert [(x.prompt, x.chosen, x.rejected) for x in p.items] == [(msgs, "4", "5")] * 3
    for row, said in (({"prompt": "q", "chosen": "a"}, "f.jsonl:1: no 'rejected' field (have: prompt, chosen)"),
                      ({"prompt": "q", "chosen": "a ", "rejected": "a"}, "chosen and rejected are the same reply"),
                      ({"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"},
                       "chosen and rejected do not share a prompt"),
                      ({"chosen": [*msgs, {"role": "assistant", "content": "4"}],
                        "rejected": [{"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]}, "the prompts differ")):
        with pytest.raises(UserError, match=said.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")):
            _pairs([row])


def test_split_by_prompt_keeps_pairs_of_one_prompt_together():
    items = [data.Pair([{"role": "user", "content": f"q{i // 3}"}], "a", "b", "") for i in range(600)]
    keys = [data.prompt_key(p) for p in items]
    held = [group_held_out(k, 0.2, seed=0) for k in keys]
    assert all(held[i] == held[i - i % 3] for i in range(600))  # the 3 pairs of a prompt go together
    assert 0.1 < sum(held) / 600 < 0.3
    assert held != [group_held_out(k, 0.2, seed=1) for k in keys]  # a function of the seed
    recipe_data = DataSection(train="-", validation_split=0.2, split_mode="tail")
    train, val = held_out(600, recipe_data, 0, unit="pairs", groups=keys)  # tail: the last prompts in file order
    assert list(val) == list(range(480, 600)) and list(train) == list(range(480))


def test_hh_rlhf_file_counts():
    """SOURCE.md's figures: 2,312 rows; 5 where a reply continues the dialogue; no identical pair (counts only)."""
    path = need(DATA / "hh_rlhf" / "harmless-base-test.jsonl.gz")
    try:
        p = data.load(str(path), COLS, "data.train")
    except UserError as e:  # the message names the row, never its text
        pytest.fail(str(e), pytrace=False)
    assert len(p) == 2312 and p.continued == 5
    assert all(x.prompt and x.prompt[-1]["role"] == "user" for x in p.items)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from pref_helpers import tiny_chat_model

    tok, _ = tiny_chat_model(tmp_path_factory.mktemp("tiny"))
    from conftest import tiny_llama

    return tok, tiny_llama(tok).eval()


def test_tokens_through_the_template_and_the_reply_mask(tiny):
    tok, model = tiny
    pairs = _pairs([{"prompt": "What is two plus two?", "chosen": "Four.", "rejected": "Blue, of course."}])
    enc = data.encode(tok, pairs, 128)
    it = enc.items[0]
    assert tok.decode(it["prompt"]) == tok.apply_chat_template([{"role": "user", "content": "What is two plus two?"}],
                                                               tokenize=False, add_generation_prompt=True)
    assert tok.decode(it["chosen"]) == "Four.<|im_end|>"  # through the end-of-turn token: the model learns to stop
    assert data.encode(tok, pairs, len(it["prompt"]) + 3).skipped == 1  # too long: skipped and counted

    task = Preference(tok.pad_token_id, COLS, "none")
    batch = task.collate(enc.items * 2, np.random.default_rng(0))
    assert batch["input_ids"].shape[0] == 4 and task.count_targets(batch) == 2
    n = len(it["prompt"])
    assert batch["reply"][0].nonzero().flatten().tolist() == list(range(n, n + len(it["chosen"])))  # prompt masked
    sums, counts = task.logps(model, batch)
    # by hand: log-softmax of the full logits at each reply token, nothing from the prompt or the padding
    with torch.no_grad():
        logp = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.log_softmax(-1)
    for row in range(4):
        pos = batch["reply"][row].nonzero().flatten()
        want = sum(logp[row, t - 1, batch["input_ids"][row, t]].item() for t in pos)
        assert sums[row].item() == pytest.approx(want, abs=1e-4) and counts[row] == len(pos)
    # changing a prompt token changes the log-probs (they are conditioned on it) but never adds prompt terms
    assert counts.tolist() == [len(it["chosen"])] * 2 + [len(it["rejected"])] * 2


def _task_and_batch(tok, model, reference, ref_model=None, **cfg):
    from pref_helpers import synthetic_pairs

    enc = data.encode(tok, _pairs(synthetic_pairs(8)), 128)
    task = Preference(tok.pad_token_id, DpoSection(**cfg), reference, ref_model)
    return task, task.collate(enc.items, np.random.default_rng(0))


def test_step_one_loss_is_ln2_from_a_reference_equal_to_the_policy(tiny):
    """A fresh LoRA adapter (the reference: the adapter disabled) and a full fine-tune (a frozen copy)."""
    import copy

    from peft import LoraConfig, get_peft_model

    tok, model = tiny
    peft = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    for reference, policy, ref in (("adapter", peft, None), ("frozen", model, copy.deepcopy(model))):
        task, batch = _task_and_batch(tok, model, reference, ref)
        loss = task.loss(policy, batch) / task.count_targets(batch)
        assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
        assert task.train_metrics(task.take_train_sums())["rewards/margins"] == 0.0


def test_guards_stop_a_broken_run(tiny):
    import copy

    tok, model = tiny
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.5 * torch.randn_like(p))
    task, batch = _task_and_batch(tok, model, "frozen", other)
    task._starts_at_reference = lambda m: True  # a reference that should equal the policy but does not
    with pytest.raises(UserError, match=r"dpo: the first loss is .* gives 0.6931 \(ln 2\): the reference is not"):
        task.loss(model, batch)
    task, batch = _task_and_batch(tok, model, "frozen", other, max_margin=1e-3)
    with pytest.raises(UserError, match="above dpo.max_margin 0.001 .*at training batch 1; stopped, last good checkpoint: none"):
        task.loss(model, batch)
    task, batch = _task_and_batch(tok, model, "none", loss="simpo")
    batch["reply"][:] = False  # no reply token scored
    with pytest.raises(UserError, match="every reply's log-prob is 0"):
        task.loss(model, batch)
    task, batch = _task_and_batch(tok, model, "none", loss="simpo")
    task.logps = lambda m, b: (torch.full((16,), float("nan")), torch.ones(16))
    with pytest.raises(UserError, match="a log-prob is NaN"):
        task.loss(model, batch)
    task, batch = _task_and_batch(tok, model, "none", loss="simpo", guard_steps=0)  # guards off after guard_steps
    task.logps = lambda m, b: (torch.zeros(16), torch.ones(16))
    task.loss(model, batch)


