"""ftkit: tokenize, pre-train, fine-tune and evaluate Transformer language models from zero."""

__version__ = "0.1.0"
