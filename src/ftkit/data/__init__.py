"""Data: reading files and hub datasets, training tokenizers, tokenized and packed caches."""
