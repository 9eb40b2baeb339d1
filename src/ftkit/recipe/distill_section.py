"""The recipe section of `ftkit compress distill` (`distill:`), a workflow over any task whose entry says
`compress`: kept beside schema.py, which holds the sections every run has."""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import Field, NonNegativeInt, PositiveInt

from ftkit.recipe.fields import Section


class DistillSection(Section):
    """`ftkit compress distill`: model.from_pretrained is the teacher; a smaller student learns its soft targets."""
    student_layers: Optional[Union[PositiveInt, list[NonNegativeInt]]] = Field(
        None, description="Student = a copy of the teacher keeping N of its transformer layers: N keeps the bottom N; "
        "a list keeps those layers (0-based, in order), e.g. [0, 3] or DistilBERT's every other layer.")
    student_config: dict[str, Any] = Field(
        default_factory=dict, description="Or: a new, randomly initialised student from the teacher's config with these "
        "overrides, e.g. {num_hidden_layers: 2, hidden_size: 128, intermediate_size: 512}.")
    temperature: float = Field(2.0, gt=0, description="Softmax temperature of teacher and student in the KL term.")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the soft (KL * T^2) loss; 1 - alpha weighs the hard-label loss.")
