"""A batch-independent ("S") search: the space without batch aggregates, as the paper's search
that found EvoNorm-S0. Same options as paper_search.py:

    python scripts/batch_independent_search.py --data ../shared/data/cifar10 --preset cpu --budget 50
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("paper_search", Path(__file__).with_name("paper_search.py"))
paper_search = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(paper_search)

if __name__ == "__main__":
    paper_search.main(batch_stats=False, default_out="runs/s-search")
