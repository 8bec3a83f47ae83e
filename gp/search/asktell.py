"""What the loop and the event log need of a searcher: ask/tell, the genomes in flight, the
history, and the counters an ask changes.

:class:`gp.search.searcher.Searcher` is one. The engine and the log-writing half of the event log
depend on this protocol rather than on the searcher, so the searcher may use the loop
(``Searcher.run``) without an import cycle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from gp.genome import Genome
from gp.search.record import Record


class AskTell(Protocol):
    history: list[Record]  # evaluated candidates, in order
    pending: dict[str, tuple[Genome, str | None, str | None]]  # key -> (genome, parent key, fingerprint)
    rng: np.random.Generator
    in_flight_redraws: int  # proposals equal to a layer being evaluated
    screened: Counter[str]  # static-probe problem -> proposals redrawn for it (searchers that screen)
    duplicate_hits: Counter[int]  # ordinal -> times its function was proposed again

    @property
    def evaluated(self) -> int: ...

    def ask(self) -> Genome: ...

    def tell(self, genome: Genome, objectives: Sequence[float] | None, *, status: str | None = None,
             reason: str | None = None, stage: str | None = None) -> Record: ...
