"""Encoder-decoder models (task seq2seq): their special ids from the tokenizer, and a warm start from encoders.

Each family starts decoding from its own token: T5, Marian and Pegasus from the pad token, BART from the end token
(</s>), a warm-started EncoderDecoderModel from BERT's [CLS]. A config built from scratch carries the ids of the
family's own vocabulary (T5: pad 0, eos 1), which may mean other tokens of ours, or none: they are set from the
tokenizer and checked against the vocabulary.
"""

from __future__ import annotations

from ftkit.errors import UserError

START_FROM = {"t5": "pad", "mt5": "pad", "umt5": "pad", "longt5": "pad", "marian": "pad", "pegasus": "pad",
              "bart": "eos", "mbart": "eos", "plbart": "eos", "encoder-decoder": "cls"}


def is_encoder_decoder(config) -> bool:
    return bool(getattr(config, "is_encoder_decoder", False))


def special_ids(config, tokenizer) -> dict:
    """Set pad / eos / decoder_start (and bos where the tokenizer has one) on `config` (and on a composite's decoder
    config) from the tokenizer; return them. An id outside the vocabulary is an error."""
    pad = tokenizer.pad_token_id
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if pad is None:
        raise UserError("tokenizer: no pad token; an encoder-decoder needs one (labels and batches are padded with it)")
    if eos is None:
        raise UserError("tokenizer: no end token (eos or sep); an encoder-decoder needs one to stop generating")
    rule = START_FROM.get(config.model_type)
    named = {"pad": pad, "eos": eos, "cls": tokenizer.cls_token_id, "bos": tokenizer.bos_token_id}
    start = named.get(rule) if rule else None
    if start is None:  # another family: its own start token when it is one of ours, else the bos, else pad
        own = getattr(config, "decoder_start_token_id", None)
        start = own if isinstance(own, int) and own < len(tokenizer) else (tokenizer.bos_token_id if tokenizer.bos_token_id is not None else pad)
    ids = {"pad_token_id": pad, "eos_token_id": eos, "decoder_start_token_id": start}
    if tokenizer.bos_token_id is not None:
        ids["bos_token_id"] = tokenizer.bos_token_id
    vocab = getattr(config, "vocab_size", None) or getattr(getattr(config, "decoder", None), "vocab_size", None)
    for key, value in ids.items():
        if vocab is not None and value >= vocab:
            raise UserError(f"tokenizer: its {key[:-9]} token id {value} is outside the model's vocabulary of {vocab}")
        setattr(config, key, value)
        if hasattr(config, "decoder") and hasattr(config.decoder, key):
            setattr(config.decoder, key, value)
    return ids


def warm_start(encoder: str, decoder: str, dropout=None):
    """An EncoderDecoderModel from two encoder checkpoints (e.g. BERT and BERT): the decoder copy gets a causal mask
    and new, randomly initialised cross-attention layers (transformers' from_encoder_decoder_pretrained)."""
    from transformers import AutoConfig, EncoderDecoderModel

    for path, key in ((encoder, "model.from_pretrained"), (decoder, "seq2seq.warm_start_decoder")):
        cfg = AutoConfig.from_pretrained(path)
        if is_encoder_decoder(cfg):
            raise UserError(f"{key}: {path} is already an encoder-decoder ({cfg.model_type}); warm starting takes two encoders")
    kwargs = {}
    if dropout is not None:
        kwargs = {"encoder_hidden_dropout_prob": dropout, "decoder_hidden_dropout_prob": dropout,
                  "encoder_attention_probs_dropout_prob": dropout, "decoder_attention_probs_dropout_prob": dropout}
    try:
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(encoder, decoder, **kwargs)
    except (OSError, ValueError) as e:
        raise UserError(f"seq2seq.warm_start_decoder: cannot build an encoder-decoder from {encoder} and {decoder}: "
                        f"{str(e).strip().splitlines()[0][:200]}") from None
    model.config.tie_encoder_decoder = False
    return model
