"""Ask/tell searchers: regularised (aging) tournament evolution and random search.

A searcher proposes genomes with :meth:`ask` and learns their scores with :meth:`tell`; it knows
nothing of how a genome is evaluated. Candidates that compute a function already evaluated (same
key, or same functional fingerprint on the probe tensors) are answered from the history at once:
they are recorded as duplicates, join the window like any child, and cost no evaluation.

Its whole state — history, window, in-flight genomes, RNG — is a JSON-able dict
(:meth:`state` / :meth:`from_state`), so a search survives a kill and resumes exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from gp import zoo
from gp.checks import fingerprint as functional_fingerprint
from gp.genome import Genome
from gp.search.record import DUPLICATE, FAILED, OK, REJECTED, STATUSES, Record, sanitize
from gp.search.selection import CRITERIA
from gp.space import SearchSpace
from gp.variation import mutate, random_genome

Fingerprint = Callable[[Genome], str]
MAX_DRAWS = 1000  # proposals per ask() before giving up on finding a new function


class Searcher:
    """Shared machinery: history, duplicate detection, tell, state. Subclasses :meth:`_propose`."""

    kind = "base"

    def __init__(self, *, seed: int | None = None, space: SearchSpace | None = None,
                 fingerprint: Fingerprint | None = functional_fingerprint) -> None:
        self.seed = seed
        self.space = space or SearchSpace()
        self.rng = np.random.default_rng(seed)
        self.fingerprint = fingerprint
        self.history: list[Record] = []
        self.pending: dict[str, tuple[Genome, str | None, str | None]] = {}  # key -> (genome, parent, fp)
        self.num_objectives: int | None = None
        self._by_key: dict[str, int] = {}
        self._by_fp: dict[str, int] = {}
        self._pending_fp: set[str] = set()

    # -- ask / tell ----------------------------------------------------------------------

    def ask(self) -> Genome:
        """A genome to evaluate, new in function; duplicates met on the way are recorded."""
        for _ in range(MAX_DRAWS):
            # the full genome is kept, dead nodes included: mutation may revive them (the paper's
            # genomes grow that way); the key, and so every cache, depends on the live graph only
            genome, parent = self._propose()
            if genome.key in self.pending:
                continue  # the same layer is being evaluated now
            if genome.key in self._by_key:
                self._record_duplicate(genome, parent, self._by_key[genome.key], None)
                continue
            fp = self.fingerprint(genome) if self.fingerprint else None
            if fp is not None and fp in self._pending_fp:
                continue
            if fp is not None and fp in self._by_fp:
                self._record_duplicate(genome, parent, self._by_fp[fp], fp)
                continue
            self.pending[genome.key] = (genome, parent, fp)
            if fp is not None:
                self._pending_fp.add(fp)
            return genome
        raise RuntimeError(f"no new layer found in {MAX_DRAWS} proposals: the space looks exhausted")

    def tell(self, genome: Genome, objectives: Sequence[float] | None, *, status: str | None = None,
             reason: str | None = None, stage: str | None = None) -> Record:
        """Record the evaluation of an asked genome. ``objectives``: K scores (higher is better), or
        None when it was rejected or failed. Non-finite scores are recorded as a failure."""
        key = genome.key
        if key not in self.pending:
            raise KeyError(f"tell() for a genome that was not asked or was told already: {genome}")
        asked, parent, fp = self.pending.pop(key)
        self._pending_fp.discard(fp)
        values, problem = sanitize(objectives, self.num_objectives)
        status = status or (OK if values is not None else REJECTED)
        if status not in STATUSES or status == DUPLICATE:
            raise ValueError(f"status must be ok, rejected or failed, got {status!r}")
        if problem is not None:
            status, reason, stage = FAILED, problem, stage or "objectives"
        if status != OK:
            values = None
        elif values is None:
            raise ValueError("status ok needs objectives")
        if values is not None and self.num_objectives is None:
            self.num_objectives = len(values)
        record = Record(len(self.history), str(asked), key, status, values, parent, reason, stage, fp)
        self._append(record)
        return record

    @property
    def evaluated(self) -> int:
        """Finished evaluations (duplicates excluded): what a budget counts."""
        return sum(1 for r in self.history if r.evaluated)

    def best(self, n: int = 10) -> list[Record]:
        """The ``n`` records with the best mean score (duplicates excluded)."""
        ranked = [r for r in self.history if r.objectives is not None and r.evaluated]
        return sorted(ranked, key=lambda r: (-r.mean, r.ordinal))[:n]

    def run(self, evaluate: Callable[[Genome], Sequence[float] | None], budget: int) -> list[Record]:
        """Evaluate ``budget`` new layers one after another with any callable (genome -> K scores,
        or None for a rejected layer); returns the history."""
        from gp.search.engine import SerialExecutor, run_search

        return run_search(self, SerialExecutor(evaluate), budget)

    # -- internals -----------------------------------------------------------------------

    def _propose(self) -> tuple[Genome, str | None]:
        raise NotImplementedError

    def _record_duplicate(self, genome: Genome, parent: str | None, original: int, fp: str | None) -> None:
        first = self.history[original]
        record = Record(len(self.history), str(genome), genome.key, DUPLICATE, first.objectives, parent,
                        f"same function as candidate {original}", first.stage, fp, duplicate_of=original)
        self._append(record)

    def _append(self, record: Record) -> None:
        """Every record passes here; an evaluated one answers later duplicates of its function."""
        self.history.append(record)
        if record.evaluated:
            self._by_key[record.key] = record.ordinal
            if record.fingerprint is not None:
                self._by_fp[record.fingerprint] = record.ordinal

    # -- state ---------------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "kind": self.kind, "seed": self.seed, "params": self._params(),
            "space": {"batch_stats": self.space.batch_stats, "max_nodes": self.space.max_nodes},
            "rng": self.rng.bit_generator.state,
            "num_objectives": self.num_objectives,
            "history": [r.to_dict() for r in self.history],
            "pending": [{"genome": str(g), "parent": p, "fingerprint": fp} for g, p, fp in self.pending.values()],
        }

    def _params(self) -> dict:
        return {}

    @staticmethod
    def from_history(kind: str, params: dict, seed: int | None, space: dict, records: Sequence[Record], *,
                     fingerprint: Fingerprint | None = functional_fingerprint) -> Searcher:
        """Rebuild a searcher from a finished history alone (e.g. read from a tracking store).

        The window, caches and objective count follow from the records; the RNG, which a history
        does not hold, restarts from (seed, number of records), so the continuation is
        reproducible though not the one an unbroken run would have drawn.
        """
        num = next((len(r.objectives) for r in records if r.objectives is not None), None)
        rng = np.random.default_rng([seed or 0, len(records)])
        state = {"kind": kind, "seed": seed, "params": params, "space": space, "rng": rng.bit_generator.state,
                 "num_objectives": num, "history": [r.to_dict() for r in records], "pending": [],
                 "seeded": len(params.get("seed_layers", ()))}
        return Searcher.from_state(state, fingerprint=fingerprint)

    @staticmethod
    def from_state(state: dict, *, fingerprint: Fingerprint | None = functional_fingerprint) -> Searcher:
        cls = {"evolution": Evolution, "random": RandomSearch}[state["kind"]]
        searcher = cls(seed=state["seed"], space=SearchSpace(**state["space"]), fingerprint=fingerprint,
                       **state["params"])
        searcher.rng.bit_generator.state = state["rng"]
        if isinstance(searcher, Evolution):
            searcher._seeded = state.get("seeded", 0)
        searcher.num_objectives = state["num_objectives"]
        for d in state["history"]:
            searcher._append(Record.from_dict(d))
        for p in state["pending"]:
            genome = Genome.parse(p["genome"])
            searcher.pending[genome.key] = (genome, p["parent"], p["fingerprint"])
            if p["fingerprint"] is not None:
                searcher._pending_fp.add(p["fingerprint"])
        return searcher


class RandomSearch(Searcher):
    """Random genomes of the space, the paper's baseline (its Figure 10)."""

    kind = "random"

    def _propose(self) -> tuple[Genome, str | None]:
        return random_genome(self.rng, self.space), None


class Evolution(Searcher):
    """Regularised tournament evolution (Real et al. 2019) with the paper's winner criteria.

    A window holds the ``population_size`` most recently finished candidates. The first
    ``population_size`` asks are random genomes (after the zoo layers named in ``seed_layers``);
    afterwards each ask draws ``tournament_size`` window members, picks a winner among those that
    may win (``criterion``: ``"pareto"`` — a random member of their Pareto front — or
    ``"average"``), and returns the paper's mutation of it. A tournament with no member that may
    win yields a random genome.
    """

    kind = "evolution"

    def __init__(self, population_size: int = 100, tournament_size: int = 25, criterion: str = "pareto", *,
                 seed_layers: Sequence[str] = (), **kwargs) -> None:
        if criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; valid: {', '.join(CRITERIA)}")
        if not 1 <= tournament_size <= population_size:
            raise ValueError(f"need 1 <= tournament_size ({tournament_size}) <= population_size ({population_size})")
        for name in seed_layers:
            zoo.get(name)  # raises naming the known layers
        super().__init__(**kwargs)
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.criterion = criterion
        self.seed_layers = tuple(seed_layers)
        self.window: deque[int] = deque(maxlen=population_size)
        self._initial = 0  # initial (random or seeded) genomes evaluated
        self._seeded = 0  # zoo seed layers proposed

    def _params(self) -> dict:
        return {"population_size": self.population_size, "tournament_size": self.tournament_size,
                "criterion": self.criterion, "seed_layers": list(self.seed_layers)}

    def state(self) -> dict:
        return super().state() | {"seeded": self._seeded}

    def _append(self, record: Record) -> None:
        super()._append(record)
        self.window.append(record.ordinal)
        if record.parent is None and record.status != DUPLICATE:
            self._initial += 1

    def _propose(self) -> tuple[Genome, str | None]:
        initial = self._initial + sum(1 for _, parent, _ in self.pending.values() if parent is None)
        if initial < self.population_size:
            if self._seeded < len(self.seed_layers):
                self._seeded += 1
                return zoo.get(self.seed_layers[self._seeded - 1]), None
            return random_genome(self.rng, self.space), None
        if not self.window:
            return random_genome(self.rng, self.space), None
        members = self.rng.choice(np.array(self.window), size=min(self.tournament_size, len(self.window)),
                                  replace=False)
        eligible = [int(m) for m in members if self.history[int(m)].objectives is not None]
        if not eligible:
            return random_genome(self.rng, self.space), None
        scores = np.array([self.history[m].objectives for m in eligible], dtype=float)
        winner = self.history[eligible[CRITERIA[self.criterion](scores, self.rng)]]
        return mutate(Genome.parse(winner.genome), self.rng, self.space), winner.key
