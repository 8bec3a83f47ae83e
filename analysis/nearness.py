"""How near a search came, in structure, to a known layer: the share of the reference's
sub-expressions that a candidate's live graph contains.

Fitness says how well a layer trains; it does not say whether a search ever proposed the parts
of a layer it failed to find. On a plateau (docs/results.md §2f: every layer with two of
BN-ReLU's three parts scores like ``tanh(x)``) the two questions part: a search can sit beside a
layer in score while never drawing its parts. This module answers the second from the records.

A *part* is a sub-expression of a live graph that reads ``x``, written in a normal form: nodes
are expanded into expressions and the arguments of ``add``, ``mul`` and ``max`` sorted, so
``add(x, neg(mean_batch(x)))`` and ``add(neg(mean_batch(x)), x)`` are one part. Sub-expressions
that do not read ``x`` (per-channel constants such as ``std_batch(v1)``) are left out: every
search draws plenty of them. The match is structural, not functional: ``x - mean`` written
another way (``neg(add(mean_batch(x), neg(x)))``) does not count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gp import ops
from gp.genome import NUM_INPUTS, Genome
from gp.search import Record

COMMUTATIVE = frozenset({"add", "mul", "max"})


def parts(genome: Genome) -> frozenset[str]:
    """The normal-form sub-expressions of ``genome``'s live graph that read ``x``."""
    text: dict[int, str] = {i: ops.INPUTS[i] for i in range(NUM_INPUTS)}
    reads: dict[int, bool] = {i: i == 0 for i in range(NUM_INPUTS)}
    found: set[str] = set()
    for i in sorted(genome.live):  # inputs of a node always have lower indices
        if i < NUM_INPUTS:
            continue
        node = genome.node(i)
        args = [text[a] for a in node.inputs]
        if node.op in COMMUTATIVE:
            args.sort()
        text[i] = f"{node.op}({', '.join(args)})"
        reads[i] = any(reads[a] for a in node.inputs)
        if reads[i]:
            found.add(text[i])
    return frozenset(found)


def reference_parts(reference: Genome) -> frozenset[str]:
    """:func:`parts` of a layer to look for; a ValueError when it has none (it does not read x)."""
    wanted = parts(reference)
    if not wanted:
        raise ValueError(f"the reference reads no x, so it has no parts to look for: {reference}")
    return wanted


def share(candidate: Genome, reference: Genome) -> float:
    """The fraction of ``reference``'s parts found in ``candidate`` (1.0: it contains the whole
    reference, the output included; the reference alone also scores 1.0)."""
    wanted = reference_parts(reference)
    return len(wanted & parts(candidate)) / len(wanted)


@dataclass(frozen=True)
class Nearness:
    """Per search: how many evaluated candidates held each number of the reference's parts."""

    reference: Genome
    counts: tuple[int, ...]  # counts[k]: evaluated candidates holding exactly k of the parts
    passing: tuple[int, ...]  # the same among candidates that passed every check (status ok)
    nearest: tuple[tuple[int, Record], ...]  # (parts held, record), most parts first, then best score

    @property
    def total(self) -> int:
        return len(parts(self.reference))


def nearness(records: Iterable[Record], reference: Genome, top: int = 5) -> Nearness:
    """Count the reference's parts in every evaluated record of a search."""
    wanted = reference_parts(reference)
    counts = [0] * (len(wanted) + 1)
    passing = [0] * (len(wanted) + 1)
    held: list[tuple[int, Record]] = []
    for record in records:
        k = len(wanted & parts(Genome.parse(record.genome)))
        counts[k] += 1
        if record.objectives is not None:
            passing[k] += 1
        if k:
            held.append((k, record))
    held.sort(key=lambda kr: (-kr[0], -_score(kr[1]), kr[1].ordinal))
    return Nearness(reference, tuple(counts), tuple(passing), tuple(held[:top]))


def held(genomes: Iterable[Genome], reference: Genome) -> tuple[int, ...]:
    """counts[k]: how many of ``genomes`` hold exactly k of ``reference``'s parts (e.g. draws of a
    generator or mutants of one layer, to set a search's counts against)."""
    wanted = reference_parts(reference)
    counts = [0] * (len(wanted) + 1)
    for genome in genomes:
        counts[len(wanted & parts(genome))] += 1
    return tuple(counts)


def _score(record: Record) -> float:
    return sum(record.objectives) / len(record.objectives) if record.objectives else float("-inf")


def table(results: Sequence[tuple[str, Nearness]]) -> list[str]:
    """Rows of text: per search, evaluated (passing) candidates by parts held, then the nearest."""
    if not results:
        return []
    total = results[0][1].total
    width = max(28, *(len(name) for name, _ in results))
    head = f"{'search':<{width}} " + " ".join(f"{f'{k}/{total}':>11}" for k in range(total + 1))
    lines = [f"evaluated candidates (passing in brackets) by how many of the reference's {total} parts they hold",
             head]
    rows = [(name, n.counts, n.passing) for name, n in results]
    if len(results) > 1:
        rows.append((f"all {len(results)}", tuple(map(sum, zip(*(n.counts for _, n in results), strict=True))),
                     tuple(map(sum, zip(*(n.passing for _, n in results), strict=True)))))
    for name, counts, passing in rows:
        lines.append(f"{name:<{width}} " + " ".join(f"{f'{c} ({p})':>11}" for c, p in zip(counts, passing,
                                                                                        strict=True)))
    for name, n in results:
        if n.nearest:
            lines.append(f"{name}: nearest")
        for k, record in n.nearest:
            score = f"{_score(record):.3f}" if record.objectives else f"{record.status} ({record.stage})"
            lines.append(f"  {k}/{total}  #{record.ordinal:<5} {score:<20} {Genome.parse(record.genome).expression()}")
    return lines
