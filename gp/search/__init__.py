"""The search: ask/tell searchers, tournament criteria, and the asynchronous steady-state loop."""

from gp.search.engine import SearchAborted, run_search
from gp.search.executor import Executor, Outcome, SerialExecutor
from gp.search.record import Record, Status, best_so_far, ranked
from gp.search.searcher import Evolution, RandomSearch, Searcher, SearchExhausted
from gp.search.selection import average_winner, pareto_front, pareto_winner

__all__ = ["Evolution", "Executor", "Outcome", "RandomSearch", "Record", "SearchAborted", "SearchExhausted",
           "Searcher", "SerialExecutor", "Status", "average_winner", "best_so_far", "pareto_front",
           "pareto_winner", "ranked", "run_search"]
