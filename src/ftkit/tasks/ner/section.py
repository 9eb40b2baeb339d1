"""The `ner:` recipe section (task ner): where the tokens and tags are in the files, the tag scheme, and how word
pieces are labelled.

Torch-free and free of ftkit imports: the recipe schema imports it (a recipe is read before torch is). These keys
were `data.*` keys before the family had its own package; `LEGACY_DATA_KEYS` lets recipes that still write them
there keep working (recipe/schema.py moves them here and prints a note)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class NerSection(BaseModel):
    """Token classification (task ner): one tag per word, scored by entity (conlleval's rules)."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True)  # as recipe.fields.Section
    token_field: int = Field(0, description="conll files: column holding the token (0-based; negative counts from the end).")
    tag_field: int = Field(-1, description="conll files: column holding the tag (CoNLL-2003: -1, the NER column of "
                           "token POS chunk NER).")
    tokens_column: str = Field("tokens", description="json/parquet/hub data: column with the list of tokens.")
    tags_column: str = Field("ner_tags", description="json/parquet/hub data: column with the list of tags (strings, or "
                             "ints named by tag_names / the dataset's ClassLabel).")
    tag_names: Optional[list[str]] = Field(None, description="Names of integer tags, in id order (e.g. [O, B-PER, I-PER]).")
    tag_scheme: Literal["iob2", "iob1", "bioes", "bilou"] = Field(
        "iob2", description="How the tags mark entities. iob2 (B- starts every entity; an I- that starts one is "
        "repaired to B- and counted, as conlleval reads it), iob1 (converted to iob2 on load), bioes, bilou (read as bioes).")
    label_all_tokens: bool = Field(False, description="Train every piece of a word on its tag (B- becomes I- after the "
                                   "first piece), not only the first. Scores always count words (first piece), so they "
                                   "are not inflated.")


LEGACY_DATA_KEYS = tuple(NerSection.model_fields)  # data.<key> before the family had its section
