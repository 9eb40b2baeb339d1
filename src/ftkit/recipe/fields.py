"""The base of every recipe section, and the data-file forms several sections accept."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


DELIMITER_HELP = ("csv/tsv: the one character between fields, e.g. ';' or '|' (TAB: \"\\t\"; quote it in YAML: "
                  "delimiter: \"|\"). Default: TAB for tsv, the comma for csv, except that a csv file whose header "
                  "row reads as one column holding ';', '|' or a TAB is read with that character (logged).")


def check_delimiter(value: Optional[str]) -> Optional[str]:
    """One character that can separate fields; the two characters \\t (YAML without quotes, a shell) mean TAB."""
    if value is None:
        return None
    if value == "\\t":
        return "\t"
    if len(value) != 1:
        raise ValueError(f"expected one character, e.g. ';', '|' or \"\\t\" (TAB); {len(value)} given "
                         "(in YAML, quote it: delimiter: \"|\")")
    if value in "\r\n\"":
        raise ValueError("a line break or the quote character cannot separate fields; expected e.g. ';', '|' or \"\\t\"")
    return value


class DataFile(Section):
    """One entry of a data.train / data.validation list that needs settings of its own (mixed sources)."""
    path: str = Field(description="A file, a glob or a directory.")
    format: Optional[Literal["text", "csv", "tsv", "json", "parquet", "label_text"]] = Field(
        None, description="File format of this entry (default: data.format).")
    text_column: Optional[str] = Field(
        None, description="Column holding the text in this entry; renamed to data.text_column when loaded.")
    column_names: Optional[list[str]] = Field(None, description="Column names for csv/tsv files without a header row.")
    delimiter: Optional[str] = Field(None, description="The field delimiter of this entry's csv/tsv files (default: "
                                     "data.delimiter).")
    rows: Optional[int] = Field(
        None, ge=1, description="Use only the first N rows (records) of this entry, in file order (all of them if it "
        "has fewer): balances a mix of sources without copying files. A plain-text file's records are its lines, blank "
        "ones included; a folder of class folders is refused (its first N would be whole classes).")

    _delimiter = field_validator("delimiter")(check_delimiter)


DataFiles = Union[str, list[Union[str, DataFile]]]
