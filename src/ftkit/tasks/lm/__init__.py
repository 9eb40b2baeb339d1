"""Causal language models (task clm): next-token loss fused with the head (loss.py), the model from a config or a
checkpoint (clm.py), and the token-stream set-up every stream pre-training shares (setup.py: the packed blocks of
data/lm_blocks.py; span corruption uses it too). clm.py exports the SPEC the registry names."""
