"""Encoder pre-training (tasks mlm, mlm+nsp, electra): masking drawn per example (masking.py), masked-LM blocks and
sentence pairs (data.py, pairs.py, documents.py, sentences.py), the three Tasks (mlm.py, nsp.py, electra.py with
its generator + discriminator pair, electra_pair.py). Each task module exports its own SPEC (the registry names it)."""
