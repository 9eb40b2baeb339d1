"""The task of this package as the registry lists it (clm): torch-free, read by the recipe schema, the CLI's help and the
workflows, which pass the entry down to models/ and data/ (see ftkit/task_entry.py)."""

from ftkit.task_entry import PRETRAIN, TaskEntry

CLM = TaskEntry("clm", PRETRAIN, "ftkit.tasks.lm.clm", "AutoModelForCausalLM", ("ForCausalLM", "LMHeadModel"), "perplexity",
    "causal LM (GPT): next-token prediction", "CAUSAL_LM", ("lora", "prefix", "prompt"), compress=True, pipeline_tag="text-generation",
    decoder_only=True, generates=True)
