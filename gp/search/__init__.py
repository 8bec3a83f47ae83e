"""The search: ask/tell searchers, tournament criteria, and the asynchronous steady-state loop."""

from gp.search.engine import Executor, SearchAborted, SerialExecutor, run_search
from gp.search.record import Record
from gp.search.searcher import Evolution, RandomSearch, Searcher, SearchExhausted
from gp.search.selection import average_winner, pareto_front, pareto_winner

__all__ = ["Evolution", "Executor", "RandomSearch", "Record", "SearchAborted", "SearchExhausted", "Searcher",
           "SerialExecutor", "average_winner", "pareto_front", "pareto_winner", "run_search"]
