"""What sft trains on, checked token by token on SmolLM2's real tokenizer and chat template: assistant masks,
training == inference rendering, no double BOS, packing without cross-attention, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ftkit.data.chat_tokens import encode, pack, prompt_ids, set_template
from ftkit.errors import UserError
from ftkit.tasks.sft.data import Conversations

from conftest import tiny_llama

MULTI = [{"role": "system", "content": "You are terse."},
         {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"},
         {"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": "6, of course."}]


@pytest.fixture(scope="module")
def tok(smol_tokenizer_dir):
    from transformers import AutoTokenizer

    return set_template(AutoTokenizer.from_pretrained(str(smol_tokenizer_dir)), None)


def _one(tok, msgs, train_on="assistant", block=512):
    return encode(tok, Conversations([msgs], ["data.jsonl row 1"], "data.jsonl"), train_on, block).items[0]


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def test_assistant_masks_decode_to_exactly_the_replies_and_their_end_of_turn(tok):
    item = _one(tok, MULTI)
    spans = _spans(item["train"])
    assert [tok.decode(item["input_ids"][a:b]) for a, b in spans] == ["4<|im_end|>", "6, of course.<|im_end|>"]
    # the end-of-turn token is a label even though pad == eos here (SmolLM2): the model learns to stop
    assert tok.pad_token_id == tok.eos_token_id and item["input_ids"][spans[0][1] - 1] == tok.eos_token_id


def test_training_tokens_are_the_inference_tokens(tok):
    """The prompt part equals apply_chat_template(..., add_generation_prompt=True) at every assistant turn, and the
    whole equals the template's own tokenization: the template of training is the template of inference."""
    item = _one(tok, MULTI)
    ids = item["input_ids"].tolist()
    full = tok.apply_chat_template(MULTI, tokenize=True)["input_ids"]
    assert ids == list(full)
    for turn in (2, 4):  # the assistant turns
        prompt = tok.apply_chat_template(MULTI[:turn], tokenize=True, add_generation_prompt=True)["input_ids"]
        assert ids[:len(prompt)] == list(prompt) == prompt_ids(tok, MULTI[:turn], "x")
        reply = tok(MULTI[turn]["content"] + tok.eos_token, add_special_tokens=False)["input_ids"]
        assert ids[len(prompt):len(prompt) + len(reply)] == reply
        assert item["train"][len(prompt):len(prompt) + len(reply)].all() and not item["train"][len(prompt) - 3:len(prompt)].any()
    assert tok.decode(ids) == tok.apply_chat_template(MULTI, tokenize=False)


def test_train_on_all_and_no_double_bos(tok):
    item = _one(tok, MULTI, train_on="all")
    assert item["train"][1:].all() and not item["train"][0]  # the first token has nothing before it to predict it
    assert (item["input_ids"][:2] == tok.bos_token_id).sum() == 1


def test_a_template_that_writes_bos_is_not_given_a_second(tok):
    """A Llama-style template starts with {{ bos_token }}; tokenizing the render must not add another."""
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(tok.name_or_path, bos_token="<|endoftext|>")
    t.chat_template = "{{ bos_token }}" + tok.chat_template
    item = _one(set_template(t, None), MULTI)
    assert item["input_ids"][0] == t.bos_token_id and item["input_ids"][1] != t.bos_token_id
    # and a template that does write two is refused, not trained on
    t.chat_template = "{{ bos_token }}{{ bos_token }}" + tok.chat_template
    with pytest.raises(UserError, match="row 1: the rendered example starts with two BOS tokens"):
        _one(t, MULTI)


def test_empty_mask_is_an_error_naming_the_row(tok):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(tok.name_or_path)
    # a template that drops assistant turns: nothing would train, silently
    t.chat_template = "{% for m in messages %}{% if m['role'] != 'assistant' %}<|im_start|>{{ m['content'] }}<|im_end|>{% endif %}{% endfor %}"
    with pytest.raises(UserError, match=r"data.jsonl row 1: no token of this example trains"):
        _one(t, MULTI)


def test_named_template_for_a_tokenizer_without_one(tok):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(tok.name_or_path)
    t.chat_template = None
    with pytest.raises(UserError, match="sft.chat_template: the tokenizer has no chat template"):
        set_template(t, None)
    item = _one(set_template(t, "chatml"), MULTI[1:3])
    assert tok.decode(item["input_ids"][item["train"]]) == "4<|im_end|>"


def test_overlong_examples_are_skipped_and_counted(tok):
    enc = encode(tok, Conversations([MULTI, MULTI[1:3]], ["r1", "r2"], "f"), "assistant", 40)
    assert enc.skipped == 1 and len(enc.items) == 1 and enc.where == ["r2"]


def test_packed_loss_equals_unpacked_loss(tok):
    """Packed rows (position ids restarting, no attention mask) give the loss of the same examples unpacked: no
    example attends to another, and no target crosses an example boundary."""
    from ftkit.tasks.sft.task import ChatSFT

    convs = [MULTI, MULTI[1:3], [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}],
             MULTI[:3]]
    items = encode(tok, Conversations(convs, [f"r{i}" for i in range(4)], "f"), "assistant", 512).items
    model = tiny_llama(tok).eval()
    rng = np.random.default_rng(0)
    plain = ChatSFT(tok.pad_token_id)
    packed = ChatSFT(tok.pad_token_id, packed=True)
    blocks = pack(items, 200, np.arange(len(items)))
    assert len(blocks) < len(items)
    with torch.no_grad():
        a = plain.loss(model, plain.collate(items, rng))
        pb = packed.collate(blocks, rng)
        b = packed.loss(model, pb)
    assert "attention_mask" not in pb
    assert plain.count_targets(plain.collate(items, rng)) == packed.count_targets(pb)
    assert b.item() == pytest.approx(a.item(), rel=1e-5)
    # the check can fail: attention across examples (an all-ones mask turns the per-example masks off) changes it
    with torch.no_grad():
        leak = model(input_ids=pb["input_ids"], attention_mask=torch.ones_like(pb["input_ids"]), use_cache=False).logits
        keep = model(input_ids=pb["input_ids"], position_ids=pb["position_ids"], use_cache=False).logits
    assert not torch.allclose(leak, keep, atol=1e-4)


@pytest.mark.parametrize("messages, expected", [
    ([{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}], r"row 3: messages\[0\] has role 'robot'"),
    ([{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}], r"row 3: messages\[0\] \(user\) has content of type int"),
    ([{"role": "user", "content": "hi"}], "row 3: the conversation has no assistant turn"),
])
def test_bad_messages_name_the_row(messages, expected):
    from ftkit.recipe.schema import DataSection
    from ftkit.tasks.sft.data import to_messages
    from ftkit.tasks.sft.section import SftSection

    with pytest.raises(UserError, match=expected):
        to_messages({"messages": messages}, "messages", DataSection(train="x"), SftSection(), "f.jsonl row 3")


def test_flexible_answer_is_the_last_number():
    """GSM8K's "flexible" extraction, for replies that do not write the answer pattern (zero-shot models)."""
    from ftkit.tasks.sft.generate import extract, last_number

    assert last_number("Janet has 16 - 3 - 4 = 9 eggs, so she makes 9 * 2 = 18.0 dollars.", ",") == "18"
    assert last_number("That is 1,234 apples", ",") == "1234"
    assert last_number("no digits here") == ""
    assert extract("so... #### 1,234", r"#### (-?[\d,]+)", ",") == "1234"
    assert extract("The answer is 7", r"#### (-?[\d,]+)") == ""  # strict: no pattern, no answer
