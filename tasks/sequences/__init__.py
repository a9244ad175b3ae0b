"""Built-in sequences, declared in YAML beside this file and validated by pydantic."""
from pathlib import Path

from clbench.config import SequenceSpec

SEQUENCES = [SequenceSpec.from_yaml(p) for p in sorted(Path(__file__).parent.glob("*.yaml"))]
