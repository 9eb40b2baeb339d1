"""The tasks of this package as the registry lists them (seq2seq, span-corruption): torch-free, read by the recipe schema, the CLI's help and the
workflows, which pass the entry down to models/ and data/ (see ftkit/task_entry.py)."""

from ftkit.task_entry import FINETUNE, PRETRAIN, RecipeSection, TaskEntry
from ftkit.tasks.seq2seq.section import Seq2SeqSection
from ftkit.tasks.seq2seq.span_section import SpanSection

# pipeline_tag: hub metadata only; transformers 5 removed the translation / summarization pipelines (card.py writes the code)
SEQ2SEQ = TaskEntry("seq2seq", FINETUNE, "ftkit.tasks.seq2seq", "AutoModelForSeq2SeqLM",
    ("ForConditionalGeneration", "MTModel", "EncoderDecoderModel"), "bleu",
    "sequence-to-sequence (translation, summarization) with an encoder-decoder (T5, BART, Marian, warm-started BERT2BERT)",
    "SEQ_2_SEQ_LM", ("lora",), pipeline_tag="text2text-generation", encoder_decoder=True, generates=True,
    sections=(RecipeSection("seq2seq", Seq2SeqSection, "Sequence-to-sequence settings (task seq2seq)."),))

# any encoder-decoder's ...ForConditionalGeneration: seq2seq, placed before this one, wins the tie
SPAN_CORRUPTION = TaskEntry("span-corruption", PRETRAIN, "ftkit.tasks.seq2seq.span_corruption", "AutoModelForSeq2SeqLM",
    ("ForConditionalGeneration",), "loss",
    "T5's span corruption: spans of the text replaced by sentinel tokens, the decoder writes them back",
    encoder_decoder=True, sections=(RecipeSection("span", SpanSection, "T5 span-corruption settings (task span-corruption)."),))
