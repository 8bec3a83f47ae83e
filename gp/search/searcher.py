"""Ask/tell searchers: regularised (aging) tournament evolution and random search.

A searcher proposes genomes with :meth:`ask` and learns their scores with :meth:`tell`; it knows
nothing of how a genome is evaluated. The history holds evaluated candidates only. A proposal
that computes a function already evaluated (same key, or a matching functional signature on the
probe tensors, :mod:`gp.search.cache`) is a *duplicate*: it is counted, answered from the cache
and redrawn; it never becomes a record, never joins the window and never votes. With
``screen=True`` (evolution's default) a proposal that the evaluator's first check, the static
probe (:func:`gp.checks.static_problem`), would reject is redrawn too, and counted by reason in
``screened``: an evaluation is spent only on layers that can score. Each ask redraws at most
``max_draws`` times.

Only deterministic verdicts are cached (ok, and rejections by the static probe, stability,
training or quality stages). A transient outcome (a failure, an out-of-memory or time budget
rejection, a dead worker) is recorded but not cached, and the layer is asked again, up to
``max_attempts`` evaluations in all; only then is its last verdict kept.

Its whole state — history, in-flight genomes, counters, RNG — is a JSON-able dict
(:meth:`state` / :meth:`from_state`), so a search survives a kill and resumes exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter, deque
from collections.abc import Callable, Sequence

import numpy as np

from gp import zoo
from gp.checks import decode_signature, signature, static_problem
from gp.checks import fingerprint as functional_fingerprint
from gp.genome import Genome
from gp.search.cache import FunctionCache
from gp.search.engine import run_search
from gp.search.executor import SerialExecutor
from gp.search.model import BehaviourModel, features
from gp.search.record import DUPLICATE, FAILED, OK, REJECTED, STATUSES, Record, ranked, sanitize
from gp.search.selection import CRITERIA
from gp.space import SearchSpace
from gp.variation import STEPS, crossover_step, mutate, pad, random_genome

Fingerprint = Callable[[Genome], str]
MAX_DRAWS = 1000  # proposals per ask() before giving up on finding a new function
MAX_ATTEMPTS = 2  # evaluations of a layer whose outcome was transient
TRANSIENT_STAGES = frozenset({"budget", "error", "worker"})
MODEL_RECORDS = 500  # the most recent records the behaviour model of ``preselect`` is fitted on
FLAT_TOURNAMENT = ("random", "mutate")  # what an ask does when every tournament member scores the same


class SearchExhausted(RuntimeError):
    """No new function found in ``max_draws`` proposals."""


def is_transient(status: str, stage: str | None) -> bool:
    """True for outcomes that say more about the machine than about the layer."""
    if status == OK:
        return False
    if status == FAILED:
        return stage != "objectives"  # non-finite or miscounted scores are the layer's own
    return stage in TRANSIENT_STAGES


def _as_signature(fp: str) -> np.ndarray:
    """A signature from a fingerprint string; any other text is matched exactly (its digest)."""
    try:
        return decode_signature(fp)
    except ValueError:
        return np.frombuffer(hashlib.sha256(fp.encode()).digest(), dtype=np.uint8).astype(np.float64) + 1000


def _random_genome(rng: np.random.Generator, space: SearchSpace, require_x: bool, tries: int) -> Genome:
    """A random graph of the paper's generator; with ``require_x``, the first of up to ``tries``
    draws whose output reads x."""
    genome = random_genome(rng, space)
    for _ in range(tries):
        if genome.reads_x or not require_x:
            break
        genome = random_genome(rng, space)
    return genome


class Searcher:
    """Shared machinery: history, duplicate detection, tell, state. Subclasses :meth:`_propose`."""

    kind = "base"

    def __init__(self, *, seed: int | None = None, space: SearchSpace | None = None,
                 fingerprint: Fingerprint | None = functional_fingerprint, max_draws: int = MAX_DRAWS,
                 max_attempts: int = MAX_ATTEMPTS, screen: bool = False) -> None:
        if max_draws < 1 or max_attempts < 1:
            raise ValueError(f"max_draws ({max_draws}) and max_attempts ({max_attempts}) must be at least 1")
        self.seed = seed
        self.space = space or SearchSpace()
        self.rng = np.random.default_rng(seed)
        self.fingerprint = fingerprint
        self.max_draws = max_draws
        self.max_attempts = max_attempts
        self.screen = screen
        self.history: list[Record] = []  # evaluated candidates only
        self.pending: dict[str, tuple[Genome, str | None, str | None]] = {}  # key -> (genome, parent, fp)
        self.num_objectives: int | None = None
        self.in_flight_redraws = 0  # proposals equal to a layer being evaluated
        self.duplicate_hits: Counter[int] = Counter()  # ordinal -> times its function was proposed again
        self.screened: Counter[str] = Counter()  # static-probe problem -> proposals redrawn for it
        self._by_key: dict[str, int] = {}
        self._cache = FunctionCache()
        self._pending_cache = FunctionCache()
        self._attempts: Counter[str] = Counter()
        self._retry: deque[tuple[Genome, str | None]] = deque()

    # -- ask / tell ----------------------------------------------------------------------

    def ask(self) -> Genome:
        """A genome to evaluate, new in function (or a retry of a transient outcome)."""
        while self._retry:
            genome, parent = self._retry.popleft()
            if genome.key not in self.pending:
                return self._hold(genome, parent, self.fingerprint(genome) if self.fingerprint else None)
        return self._hold(*self._new_proposal())

    def _new_proposal(self) -> tuple[Genome, str | None, str | None]:
        """The next proposal that is new in function and passes the screen: (genome, parent key,
        fingerprint); duplicates and screened proposals on the way are counted."""
        for _ in range(self.max_draws):
            # the full genome is kept, dead nodes included: mutation may revive them; the key, and
            # so every cache, depends on the live graph only
            genome, parent = self._propose()
            if genome.key in self.pending:
                self.in_flight_redraws += 1
                continue
            if genome.key in self._by_key:
                self._duplicate(self._by_key[genome.key])
                continue
            fp = self.fingerprint(genome) if self.fingerprint else None
            if fp is not None:
                sig = _as_signature(fp)
                if self._pending_cache.find(sig) is not None:
                    self.in_flight_redraws += 1
                    continue
                hit = self._cache.find(sig)
                if hit is not None:
                    self._duplicate(hit)
                    continue
            if self.screen and (problem := static_problem(genome)) is not None:
                self.screened[problem] += 1
                continue
            return genome, parent, fp
        raise SearchExhausted(f"no new layer found in {self.max_draws} proposals: the space looks exhausted "
                              f"({self.duplicates} duplicates, {self.screened_out} screened out so far)")

    def tell(self, genome: Genome, objectives: Sequence[float] | None, *, status: str | None = None,
             reason: str | None = None, stage: str | None = None) -> Record:
        """Record the evaluation of an asked genome. ``objectives``: K scores (higher is better; a
        single number is one score), or None when it was rejected or failed. Non-finite scores are
        recorded as a failure. Objectives that are not numbers raise TypeError, and the genome stays
        asked."""
        key = genome.key
        if key not in self.pending:
            raise KeyError(f"tell() for a genome that was not asked or was told already: {genome}")
        values, problem = sanitize(objectives, self.num_objectives)
        asked, parent, fp = self.pending.pop(key)
        if fp is not None:
            self._pending_cache.discard(_as_signature(fp))
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
    def duplicates(self) -> int:
        """Proposals answered from the cache."""
        return sum(self.duplicate_hits.values())

    @property
    def screened_out(self) -> int:
        """Proposals redrawn because the static probe rejects them."""
        return self.screened.total()

    @property
    def evaluated(self) -> int:
        """Finished evaluations: what a budget counts."""
        return len(self.history)

    def best(self, n: int = 10) -> list[Record]:
        """The ``n`` records with the best mean score."""
        return ranked(self.history)[:n]

    def run(self, evaluate: Callable[[Genome], Sequence[float] | float | None], budget: int) -> list[Record]:
        """Evaluate ``budget`` new layers one after another with any callable (genome -> K scores,
        one number, or None for a rejected layer); returns the history."""
        return run_search(self, SerialExecutor(evaluate), budget)

    # -- internals -----------------------------------------------------------------------

    def _propose(self) -> tuple[Genome, str | None]:
        raise NotImplementedError

    def _hold(self, genome: Genome, parent: str | None, fp: str | None) -> Genome:
        self.pending[genome.key] = (genome, parent, fp)
        if fp is not None:
            self._pending_cache.add(_as_signature(fp), -1)
        return genome

    def _duplicate(self, original: int) -> None:
        self.duplicate_hits[original] += 1

    def _append(self, record: Record) -> None:
        """Every record passes here, live or replayed: caches only deterministic verdicts and
        queues a bounded retry of a transient one."""
        assert record.ordinal == len(self.history), "records must be appended in order"
        self.history.append(record)
        self._retry = deque((g, p) for g, p in self._retry if g.key != record.key)
        if is_transient(record.status, record.stage):
            self._attempts[record.key] += 1
        if not self._kept(record):
            self._retry.append((Genome.parse(record.genome), record.parent))
            return
        self._by_key.setdefault(record.key, record.ordinal)
        if record.fingerprint is not None:
            self._cache.add(_as_signature(record.fingerprint), record.ordinal)

    def _kept(self, record: Record) -> bool:
        """True when ``record``'s verdict is the layer's last: a deterministic one, or a transient
        one whose ``max_attempts`` are spent (its attempts counted by :meth:`_append`)."""
        return not is_transient(record.status, record.stage) or self._attempts[record.key] >= self.max_attempts

    # -- state ---------------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "kind": self.kind, "seed": self.seed, "params": self._params(),
            "space": {"batch_stats": self.space.batch_stats, "max_nodes": self.space.max_nodes},
            "rng": self.rng.bit_generator.state,
            "num_objectives": self.num_objectives,
            "counters": {"in_flight_redraws": self.in_flight_redraws,
                         "duplicate_hits": {str(k): v for k, v in self.duplicate_hits.items()},
                         "screened": dict(self.screened)},
            "history": [r.to_dict() for r in self.history],
            "pending": [{"genome": str(g), "parent": p, "fingerprint": fp} for g, p, fp in self.pending.values()],
        }

    def _params(self) -> dict:
        return {"screen": True} if self.screen else {}

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
        params = dict(state["params"])
        if cls is Evolution:  # written before these options existed: replay the behaviour it ran with
            params = {"mutation_repeat": 0.0, "flat_tournament": "mutate", "require_x": False, "screen": False,
                      "distinct": False} | params
        searcher = cls(seed=state["seed"], space=SearchSpace(**state["space"]), fingerprint=fingerprint, **params)
        searcher.rng.bit_generator.state = state["rng"]
        if isinstance(searcher, Evolution):
            searcher._seeded = state.get("seeded", 0)
        searcher.num_objectives = state["num_objectives"]
        counters = state.get("counters", {})
        searcher.in_flight_redraws = counters.get("in_flight_redraws", 0)
        searcher.duplicate_hits = Counter({int(k): v for k, v in counters.get("duplicate_hits", {}).items()})
        searcher.screened = Counter(counters.get("screened", {}))
        renumber: dict[int, int] = {}
        for d in state["history"]:
            record = Record.from_dict(d)
            if record.status == DUPLICATE:  # histories written before duplicates stopped being records
                searcher._duplicate(renumber.get(record.duplicate_of, record.duplicate_of or 0))
                continue
            renumber[record.ordinal] = len(searcher.history)
            searcher._append(dataclasses.replace(record, ordinal=len(searcher.history)))
        for p in state["pending"]:
            searcher._hold(Genome.parse(p["genome"]), p["parent"], p["fingerprint"])
        return searcher


class RandomSearch(Searcher):
    """Random genomes of the space, the paper's baseline (its Figure 10). ``require_x=True``
    draws only graphs whose output reads ``x``, ``screen=True`` only layers that pass the static
    probe (stronger baselines than the paper's)."""

    kind = "random"

    def __init__(self, *, require_x: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.require_x = require_x

    def _params(self) -> dict:
        return super()._params() | ({"require_x": True} if self.require_x else {})

    def _propose(self) -> tuple[Genome, str | None]:
        return _random_genome(self.rng, self.space, self.require_x, self.max_draws), None


class Evolution(Searcher):
    """Regularised tournament evolution (Real et al. 2019) with the paper's winner criteria.

    The window holds the ``population_size`` most recent candidates that may win (status ok); the
    paper filters rejected layers out of the population, and so do we unless
    ``window_rejected=True`` (then rejected and failed candidates also take slots, and age out,
    but never win). Until the window holds ``min_window`` candidates (default: full, as the paper's
    random initial population), asks are random genomes (after the zoo layers named in
    ``seed_layers``); afterwards each ask draws ``tournament_size`` window members, picks a
    winner (``criterion``: ``"pareto"`` — a random member of their Pareto front — or
    ``"average"``), and returns a mutation of it that changes its live graph (``mutation``: the
    step, :data:`gp.variation.STEPS`, default ``"indel"``: point mutations, insertions and
    deletions; ``mutation_repeat``: probability of each further step, see
    :func:`gp.variation.mutate`).

    A tournament whose members all score the same (every objective equal: typically all at a
    clipped floor) carries no information; mutating an arbitrary member of it is a local random
    walk that explores less than a fresh draw. With ``flat_tournament="random"`` (the default)
    such an ask is answered with a random genome, so evolution is random search where the
    fitness is flat and selects where it is not; ``"mutate"`` mutates a member as the paper does.
    Where few random graphs pass every check (real CIFAR-10: under 2% of the graphs reading x in
    the ``fast`` preset), a full window of passing founders costs hundreds of random evaluations
    before the first tournament; ``min_window=1`` starts tournaments at the first passing layer
    (a tournament of one mutates it) and lets the window fill with its variations.
    ``require_x=True`` draws every random genome (founders, immigrants, flat-tournament draws)
    among graphs whose output reads ``x``; six in ten of the paper's random graphs do not, and
    the static probe rejects every one of them.

    ``screen=True`` (the default; the paper evaluates every proposal) redraws, unevaluated, every
    proposal the static probe rejects: on the surrogate benchmark a fifth of the children were such
    layers, each costing a whole evaluation (docs/results.md §1.0).

    Genomes are kept at ``space.max_nodes`` nodes (random ones padded with dead nodes), so that
    any graph of the space stays reachable from every lineage (see :mod:`gp.variation`).

    ``distinct=True`` keeps out of the window a candidate whose scores equal a window member's
    exactly. It is recorded and counts against the budget, but it never becomes a member. On a
    probe fitness, dozens of variants that compute the same values there otherwise fill the window:
    ``max(std_batch(x), tanh(tanh(x)))`` is ``std_batch(x)`` on N(0, 1) inputs, and the window
    stalls on that plateau. Off by default: its pilots were within noise overall, with one target
    rescued (docs/results.md §1.0g).

    ``adaptive_immigration=True`` lets the search choose, ask by ask, between a mutant and a fresh
    random genome by Thompson sampling on how often each has paid: a candidate pays when its mean
    score beats every window member's when it is told. Where the fitness has a slope, mutants pay
    and draws fade; where the best layers are needles on a plateau, mutants of plateau members pay
    no more than draws, and a large share of the asks are draws, as in random search. The counts
    follow from the history, so a resumed search continues them.

    ``preselect=K`` (K > 1) draws K proposals per ask once the founders are told, each new in
    function and past the screen, and asks the one with the highest expected improvement under a
    Gaussian-process model of the scores in behaviour space (:mod:`gp.search.model`): what the
    layers output on the probe batches, which the duplicate check computes anyway. The others are
    dropped unevaluated. A proposal that behaves like the best layers, or like nothing evaluated
    yet, is preferred to one that behaves like a mediocre layer, so an evaluation is spent where it
    is likeliest to improve. The model is fitted on the last ``MODEL_RECORDS`` kept records (a
    rejected layer counts as the lowest score) and depends on the history alone, so a resumed
    search continues exactly. Off by default: with K = 8 on two outside-study sets it preferred
    novel behaviour over refinement and lost to the defaults, 108 seeds to 146
    (docs/results.md §1.0q).

    Three options for studies, off by default because their pilots on the surrogate were within
    noise (docs/results.md §1.0, Tuning): ``crossover`` is the share of children grafted from the
    winners of two tournaments (:func:`gp.variation.crossover_step`) instead of mutated;
    ``parsimony`` lets only the smallest live graph of tournament members with the same scores
    compete; ``elite`` is the share of children whose parent is the criterion's winner over every
    candidate evaluated so far, aged out or not, instead of a tournament's.
    With all three off, the random stream is the one the search drew before they existed.
    """

    kind = "evolution"

    def __init__(self, population_size: int = 100, tournament_size: int = 25, criterion: str = "pareto", *,
                 seed_layers: Sequence[str] = (), window_rejected: bool = False, mutation: str = "indel",
                 mutation_repeat: float = 0.5, immigration: float = 0.0, flat_tournament: str = "random",
                 require_x: bool = True, min_window: int | None = None, screen: bool = True, crossover: float = 0.0,
                 parsimony: bool = False, elite: float = 0.0, distinct: bool = False,
                 adaptive_immigration: bool = False, preselect: int = 0, **kwargs) -> None:
        if criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; valid: {', '.join(CRITERIA)}")
        if not 1 <= tournament_size <= population_size:
            raise ValueError(f"need 1 <= tournament_size ({tournament_size}) <= population_size ({population_size})")
        for name in seed_layers:
            zoo.get(name)  # raises naming the known layers
        super().__init__(screen=screen, **kwargs)
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.criterion = criterion
        self.seed_layers = tuple(seed_layers)
        self.window_rejected = window_rejected
        if mutation not in STEPS:
            raise ValueError(f"unknown mutation {mutation!r}; valid: {', '.join(STEPS)}")
        self.mutation = mutation
        if not 0.0 <= mutation_repeat < 1.0:
            raise ValueError(f"mutation_repeat must be in [0, 1), got {mutation_repeat}")
        self.mutation_repeat = mutation_repeat
        self.require_x = require_x
        if not 0.0 <= immigration < 1.0:
            raise ValueError(f"immigration must be in [0, 1), got {immigration}")
        self.immigration = immigration
        if not 0.0 <= crossover < 1.0:
            raise ValueError(f"crossover must be in [0, 1), got {crossover}")
        self.crossover = crossover
        self.parsimony = parsimony
        if not 0.0 <= elite < 1.0:
            raise ValueError(f"elite must be in [0, 1), got {elite}")
        self.elite = elite
        self.distinct = distinct
        self.adaptive_immigration = adaptive_immigration
        if preselect < 0:
            raise ValueError(f"preselect must be 0 (off) or a number of proposals, got {preselect}")
        self.preselect = preselect
        self._features: dict[str, np.ndarray] = {}  # key -> behaviour features, for preselect
        self.paid: dict[str, list[int]] = {"mutant": [0, 0], "draw": [0, 0]}  # kind -> [paid, tried]
        if flat_tournament not in FLAT_TOURNAMENT:
            raise ValueError(f"unknown flat_tournament {flat_tournament!r}; valid: {', '.join(FLAT_TOURNAMENT)}")
        self.flat_tournament = flat_tournament
        if min_window is not None and not 1 <= min_window <= population_size:
            raise ValueError(f"need 1 <= min_window ({min_window}) <= population_size ({population_size})")
        self.min_window = min_window or population_size
        self.window: deque[int] = deque(maxlen=population_size)
        self._seeded = 0  # zoo seed layers proposed
        self._qualified = 0  # candidates that qualified for the window, members (or kept out by distinct) or not

    def _params(self) -> dict:
        return {"population_size": self.population_size, "tournament_size": self.tournament_size,
                "criterion": self.criterion, "seed_layers": list(self.seed_layers),
                "window_rejected": self.window_rejected, "mutation": self.mutation,
                "mutation_repeat": self.mutation_repeat, "require_x": self.require_x,
                "immigration": self.immigration, "flat_tournament": self.flat_tournament,
                "min_window": self.min_window, "screen": self.screen, "crossover": self.crossover,
                "parsimony": self.parsimony, "distinct": self.distinct} | (
                    {"elite": self.elite} if self.elite else {}) | (
                    {"adaptive_immigration": True} if self.adaptive_immigration else {}) | (
                    {"preselect": self.preselect} if self.preselect > 1 else {})

    def state(self) -> dict:
        return super().state() | {"seeded": self._seeded}

    def _append(self, record: Record) -> None:
        super()._append(record)
        may_join = record.objectives is not None or (
            self.window_rejected and not is_transient(record.status, record.stage))
        if self.adaptive_immigration and self._qualified >= self.min_window and self._kept(record):
            self._score_ask(record)  # a transient verdict counts once its retries are spent
        if not may_join:
            return
        self._qualified += 1
        if self.distinct and record.objectives is not None and any(
                self.history[m].objectives == record.objectives for m in self.window):
            return  # its scores are a window member's already: it would only crowd that plateau
        self.window.append(record.ordinal)

    def _score_ask(self, record: Record) -> None:
        """Count a candidate told once ``min_window`` candidates have qualified for the window (in a
        serial run: every candidate after the founders) as tried by its kind (a mutant or crossover
        child has a parent, a draw has none), and as paid when its mean score beats every window
        member's, or the window holds none that scored (``adaptive_immigration``)."""
        counts = self.paid["mutant" if record.parent is not None else "draw"]
        counts[1] += 1
        if record.objectives is None:
            return
        means = [float(np.mean(self.history[m].objectives)) for m in self.window
                 if self.history[m].objectives is not None]
        if not means or float(np.mean(record.objectives)) > max(means):
            counts[0] += 1

    def _draw_instead(self) -> bool:
        """Thompson sampling between a mutant and a random draw (``adaptive_immigration``): a draw
        when a sample of its pay rate's posterior (Beta, uniform prior) beats the mutants'."""
        (mp, mt), (dp, dt) = self.paid["mutant"], self.paid["draw"]
        return bool(self.rng.beta(1 + dp, 1 + dt - dp) > self.rng.beta(1 + mp, 1 + mt - mp))

    def _random(self) -> Genome:
        genome = _random_genome(self.rng, self.space, self.require_x, self.max_draws)
        return pad(genome, self.space.max_nodes, self.rng, self.space)

    def ask(self) -> Genome:
        """With ``preselect`` K > 1, once the founders are told: K new proposals, of which the one
        with the highest expected improvement under the behaviour model is asked."""
        if self.preselect < 2 or self._retry or self._founding():
            return super().ask()
        train = [r for r in self.history[-MODEL_RECORDS:] if self._kept(r)]  # every scored record is kept
        if sum(r.objectives is not None for r in train) < 2:
            return super().ask()
        pool: dict[str, tuple[Genome, str | None, str | None]] = {}
        for _ in range(self.preselect):
            proposal = self._new_proposal()
            pool.setdefault(proposal[0].key, proposal)
        proposals = list(pool.values())
        if len(proposals) > 1:
            y = np.array([np.mean(r.objectives) if r.objectives is not None else -np.inf for r in train])
            model = BehaviourModel(np.stack([self._behaviour(r.key, r.genome, r.fingerprint) for r in train]), y)
            value = model.expected_improvement(np.stack([self._behaviour(g.key, g, fp) for g, _, fp in proposals]))
            return self._hold(*proposals[int(np.argmax(value))])
        return self._hold(*proposals[0])

    def _behaviour(self, key: str, genome: Genome | str, fp: str | None) -> np.ndarray:
        """The behaviour features of a layer (:func:`gp.search.model.features` of its signature),
        cached by key: decoded from its fingerprint when the search fingerprints by signature (the
        default), computed otherwise."""
        if key not in self._features:
            values = None
            if fp is not None and self.fingerprint is functional_fingerprint:
                try:
                    values = decode_signature(fp)
                except ValueError:
                    pass  # a record written before fingerprints were signatures
            if values is None:
                values = signature(genome if isinstance(genome, Genome) else Genome.parse(genome))
            self._features[key] = features(values)
        return self._features[key]

    def _founding(self) -> bool:
        """True while asks are founders: fewer than ``min_window`` candidates, told or in flight,
        qualified for the window. Qualified, members or not: under ``distinct`` tied founders stay
        out, and a fitness with few distinct values must not keep the window filling forever."""
        founders = sum(1 for _, parent, _ in self.pending.values() if parent is None)
        return self._qualified + founders < self.min_window

    def _propose(self) -> tuple[Genome, str | None]:
        if self._founding():
            if self._seeded < len(self.seed_layers):
                self._seeded += 1
                layer = zoo.get(self.seed_layers[self._seeded - 1])
                return pad(layer, self.space.max_nodes, self.rng, self.space), None
            return self._random(), None
        if self.immigration and self.rng.random() < self.immigration:
            return self._random(), None  # a random immigrant keeps random search's reach
        if self.adaptive_immigration and self._draw_instead():
            return self._random(), None
        winner = self._best() if self.elite and self.rng.random() < self.elite else self._tournament()
        if winner is None:
            return self._random(), None
        parent = pad(Genome.parse(winner.genome), self.space.max_nodes, self.rng, self.space)
        if self.crossover and self.rng.random() < self.crossover and (other := self._tournament()) is not None:
            donor = Genome.parse(other.genome)
            child = crossover_step(parent, donor, self.rng, self.space)
            if child.key not in (parent.key, donor.key):
                return child, winner.key
        return mutate(parent, self.rng, self.space, step=self.mutation, repeat=self.mutation_repeat), winner.key

    def _best(self) -> Record | None:
        """The criterion's winner over every candidate evaluated so far, aged out or not (``elite``)."""
        eligible = [r for r in self.history if r.objectives is not None]
        if not eligible:
            return None
        scores = np.array([r.objectives for r in eligible], dtype=float)
        return eligible[CRITERIA[self.criterion](scores, self.rng)]

    def _tournament(self) -> Record | None:
        """The winner of a tournament of the window, or None when it holds no information (no
        member may win, or with ``flat_tournament="random"`` all score the same)."""
        members = self.rng.choice(np.array(self.window), size=min(self.tournament_size, len(self.window)),
                                  replace=False)
        eligible = [int(m) for m in members if self.history[int(m)].objectives is not None]
        if not eligible:
            return None
        scores = np.array([self.history[m].objectives for m in eligible], dtype=float)
        if self.flat_tournament == "random" and len(eligible) > 1 and (scores == scores[0]).all():
            return None
        if self.parsimony:  # of members that score the same, only the smallest live graph competes
            size = {m: Genome.parse(self.history[m].genome).live_nodes for m in eligible}
            smallest: dict[tuple, int] = {}
            for m, row in zip(eligible, map(tuple, scores), strict=True):
                if row not in smallest or size[m] < size[smallest[row]]:
                    smallest[row] = m
            eligible = list(smallest.values())
            scores = np.array([self.history[m].objectives for m in eligible], dtype=float)
        return self.history[eligible[CRITERIA[self.criterion](scores, self.rng)]]
