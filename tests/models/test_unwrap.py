"""models.anatomy.unwrap: the one helper that finds the transformers model inside a peft adapter, torch.compile's
wrapper, or both (DDP's `.module` goes the same way, through accelerate's extract_model_from_parallel)."""

import torch
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertForSequenceClassification

from ftkit.models.anatomy import unwrap


def test_unwrap_finds_the_model_inside_every_wrapper():
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16))
    adapted = get_peft_model(model, LoraConfig(target_modules=["query"], task_type="SEQ_CLS"))
    for wrapped in (model, adapted, torch.compile(adapted), torch.compile(model)):
        assert unwrap(wrapped) is model
