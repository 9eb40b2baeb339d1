"""The base of every recipe section, and the data-file forms several sections accept."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataFile(Section):
    """One entry of a data.train / data.validation list that needs settings of its own (mixed sources)."""
    path: str = Field(description="A file, a glob or a directory.")
    format: Optional[Literal["text", "csv", "tsv", "json", "parquet", "label_text"]] = Field(
        None, description="File format of this entry (default: data.format).")
    text_column: Optional[str] = Field(
        None, description="Column holding the text in this entry; renamed to data.text_column when loaded.")
    column_names: Optional[list[str]] = Field(None, description="Column names for csv/tsv files without a header row.")
    rows: Optional[int] = Field(
        None, ge=1, description="Use only the first N rows (records) of this entry, in file order (all of them if it "
        "has fewer): balances a mix of sources without copying files. A plain-text file's records are its lines, blank "
        "ones included; a folder of class folders is refused (its first N would be whole classes).")


DataFiles = Union[str, list[Union[str, DataFile]]]
