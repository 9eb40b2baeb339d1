"""The registry: which task a saved model is (no ordering trap: the most specific architecture suffix wins, and a
model's own recipe decides between tasks that share an architecture), and what its models are (flags)."""

import json

from ftkit import registry
from ftkit.models import saved
from ftkit.workflows.resolve import family, task_of_saved


def test_the_most_specific_architecture_wins_whatever_the_order():
    assert registry.candidates(["ElectraForPreTraining"]) == ("electra", "mlm+nsp")
    assert registry.infer(["ElectraForPreTraining"]).name == "electra"
    assert registry.infer(["BertForPreTraining"]).name == "mlm+nsp"
    assert registry.infer(["ViTMAEForPreTraining"]).name == "mim"
    assert registry.infer(["BertForTokenClassification"]).name == "ner"
    assert registry.infer(["BertModel"]) is None


def test_the_recipe_a_model_was_trained_with_tells_tasks_of_one_architecture_apart(tmp_path):
    assert registry.candidates(["LlamaForCausalLM"]) == ("clm", "sft", "dpo")
    assert registry.infer(["LlamaForCausalLM"]).name == "clm" and registry.infer(["LlamaForCausalLM"], "sft").name == "sft"
    assert registry.infer(["BertForTokenClassification"], "sft").name == "ner"  # a recipe that does not fit: the config wins
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    assert task_of_saved(str(tmp_path)).name == "clm"
    (tmp_path / "recipe.yaml").write_text("task: sft\nmodel: {from_pretrained: x}\n")
    assert saved.trained_as(str(tmp_path)) == "sft" and task_of_saved(str(tmp_path)).name == "sft"
    (tmp_path / "recipe.yaml").write_text("- not: a mapping\n")
    assert task_of_saved(str(tmp_path)).name == "clm"


def test_flags_say_what_the_models_are():
    writers = {t.name for t in registry.TASKS if t.generates}
    assert {t.name for t in registry.TASKS if t.decoder_only} == {"clm", "sft", "dpo"}
    assert {t.name for t in registry.TASKS if t.encoder_decoder} == {"seq2seq", "span-corruption"}
    assert writers == {"clm", "sft", "dpo", "seq2seq"}
    assert registry.infer(["T5ForConditionalGeneration"]) == registry.infer(["EncoderDecoderModel"]) == registry.entry("seq2seq")
    assert registry.infer(["MarianMTModel"]) == registry.infer(["BartForConditionalGeneration"]) == registry.entry("seq2seq")
    assert registry.infer(["T5ForConditionalGeneration"], trained_as="span-corruption").name == "span-corruption"


def test_each_family_is_the_one_of_its_entry_and_names_no_other():
    """The registry lists the packages' own entries; each entry's module holds the Family of exactly that entry
    (models/ and data/ get the entry from it, never a name to look up)."""
    assert len(set(registry.NAMES)) == len(registry.TASKS)
    for entry in registry.TASKS:
        assert family(entry).entry is entry, entry.name
