"""A search's report: PNG plots and one self-contained HTML page, read from tracking only (it trains
nothing).

The page embeds its images (base64 ``data:`` URIs), so it displays wherever it is opened, MLflow's
artifact viewer included (that viewer does not resolve relative image paths); the PNGs are also
written beside it, for papers and slides.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from pathlib import Path

from analysis import drawing, lineage, plots
from evaluation.tracking import Tracker, anchors_of, config_of
from gp import formula, zoo
from gp.genome import Genome
from gp.search import Record, ranked
from gp.search.record import FAILED, REJECTED

OUTCOMES = (REJECTED, FAILED)
"""Outcomes with a reason: a rejection is a verdict on the layer; a failure is an error of the
evaluation itself (a crash, a lost worker), which says nothing about the layer."""


def _top(records: list[Record], n: int) -> list[Record]:
    return ranked(records)[:n]


def _baseline(runs: dict[str, list[Record]]) -> float | None:
    """BN-ReLU's mean accuracy where a search of the experiment evaluated it."""
    key = zoo.get("bn_relu").key
    scores = [r.mean for records in runs.values() for r in records if r.key == key and r.objectives is not None]
    return max(scores) if scores else None


def write_report(tracker: Tracker, run: str, out: Path, *, top: int = 10) -> Path:
    """Write ``progress.png``, ``pareto.png``, ``rejections.png``, ``lineage.png``, one drawing per
    top layer and ``report.html`` (images embedded) into ``out``; returns the HTML page's path."""
    run_id = tracker.resolve(run)
    parent = tracker.search_run(run_id)
    anchors = anchors_of(parent)
    algorithm = parent.data.tags.get("evonorm.algorithm", "search")
    records = tracker.history(run_id)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    runs = {f"{algorithm} (this run)": records}
    for other in tracker.searches():  # the newest search of another algorithm, for comparison
        other_alg = other.data.tags.get("evonorm.algorithm")
        if other.info.run_id != run_id and other_alg and other_alg != algorithm:
            runs[f"{other_alg} ({other.info.run_id[:8]})"] = tracker.history(other.info.run_id)
            break
    plots.progress(runs, out / "progress.png", _baseline(runs))
    plots.pareto(records, anchors, out / "pareto.png")
    plots.rejections(records, out / "rejections.png")
    best = _top(records, top)
    lineage.plot(records, best, out / "lineage.png")
    for rank, r in enumerate(best, 1):
        drawing.draw_graph(Genome.parse(r.genome), out / f"layer-{rank:02d}.png")

    page = _html(run_id, tracker, parent, anchors, records, best, runs, out)
    path = out / "report.html"
    path.write_text(page)
    return path


def embed(path: Path, alt: str = "", **attrs: str) -> str:
    """An ``<img>`` holding the PNG itself, so the page needs no file beside it."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    extra = "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt or Path(path).name)}"{extra}>'


def outcome_reasons(records: list[Record], limit: int = 15) -> list[tuple[str, str, str, int]]:
    """(outcome, stage, reason, candidates) for rejected and failed candidates, most common first;
    a reason's trailing detail (" after N steps") is cut so that like reasons count together."""
    reasons = Counter((r.status, r.stage or "", (r.reason or "(no reason recorded)").split(" after ")[0][:100])
                      for r in records if r.status in OUTCOMES)
    return [(s, st, t, n) for (s, st, t), n in reasons.most_common(limit)]


def _lineage_html(records: list[Record], best: list[Record]) -> str:
    e = html.escape
    parts = []
    for rank, r in enumerate(best, 1):
        steps = lineage.lineage(records, r)
        items = []
        for s in steps:
            score = f"{s.child.mean:.3f}" if s.child.objectives is not None else e(s.child.status)
            if s.parent is None:
                items.append(f"<li>#{s.child.ordinal} ({score}) root: "
                             f"{'seeded or random' if s.child.parent is None else 'parent not in this run'}</li>")
                continue
            d = s.delta
            change = "; ".join(e(c) for c in s.changes) or "no live node changed"
            drift = f", {s.neutral} dead node{'s' if s.neutral != 1 else ''} changed" if s.neutral else ""
            items.append(f"<li>#{s.parent.ordinal} &rarr; #{s.child.ordinal} ({score}"
                         f"{f', <b>{d:+.3f}</b>' if d is not None else ''}): <code>{change}</code>{drift}</li>")
        parts.append(f"<details{' open' if rank <= 3 else ''}><summary>#{rank}: candidate {r.ordinal}, "
                     f"{len(steps) - 1} mutation(s) from its root</summary><ol>{''.join(items)}</ol></details>")
    return "".join(parts)


def _html(run_id, tracker, parent, anchors, records, best, runs, out: Path) -> str:
    e = html.escape
    counts = Counter(r.status for r in records)
    stages = Counter(r.stage for r in records if r.status == REJECTED)
    search_cfg = config_of(parent)["search"]
    rows = "".join(
        f"<tr><td>{rank}</td><td>{r.ordinal}</td><td><code>{e(formula(Genome.parse(r.genome)))}</code></td>"
        + "".join(f"<td>{v:.3f}</td>" for v in r.objectives) + f"<td><b>{r.mean:.3f}</b></td>"
        f"<td>{embed(out / f'layer-{rank:02d}.png', height='110')}</td></tr>" for rank, r in enumerate(best, 1))
    reason_rows = "".join(f"<tr><td>{e(s)}</td><td>{e(st)}</td><td>{e(t)}</td><td>{n}</td></tr>"
                          for s, st, t, n in outcome_reasons(records))
    compared = ", ".join(e(k) for k in runs)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>evonorm report {e(run_id[:8])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} td,th{{padding:3px 8px;text-align:left}}
table{{border-collapse:collapse}} tr:nth-child(even){{background:#f4f4f4}} img{{max-width:100%}}
li{{margin:2px 0}} code{{font-size:90%}}</style></head>
<body>
<h1>evonorm search {e(parent.info.run_name or run_id)}</h1>
<p>run <code>{e(run_id)}</code> in {e(tracker.uri)}, experiment <b>{e(tracker.experiment)}</b>;
algorithm {e(search_cfg["algorithm"])}, criterion {e(search_cfg["criterion"])}, population
{search_cfg["population_size"]}, tournament {search_cfg["tournament_size"]}.</p>
<p>{len(records)} candidates: {", ".join(f"{n} {e(s)}" for s, n in counts.most_common())}.
Rejected by stage: {", ".join(f"{e(s or '?')} {n}" for s, n in stages.most_common()) or "none"}.</p>
<h2>Progress</h2><p>Best mean validation accuracy so far against candidates evaluated ({compared}).</p>
{embed(out / "progress.png")}
<h2>Top layers</h2>
<p>Graphs: inputs in yellow; each edge enters its own port; the operands of a non-commutative op
are labelled <i>a</i> and <i>b</i> as in the op's form written in its box.</p>
<table><tr><th>#</th><th>candidate</th><th>formula</th>{"".join(f"<th>{e(a)}</th>" for a in anchors)}
<th>mean</th><th>graph</th></tr>{rows}</table>
<h2>Lineage</h2>
<p>Each top layer's ancestry: parent &rarr; child, the node the mutation changed and the change of
mean score. Candidate numbers are the order of evaluation.</p>
{embed(out / "lineage.png")}
{_lineage_html(records, best)}
<h2>Pareto fronts</h2>{embed(out / "pareto.png")}
<h2>Rejections and failures</h2>
<p>A rejection is the evaluation's verdict on a layer; a failure is an error of the evaluation
itself (a crash, a lost worker) and says nothing about the layer.</p>
{embed(out / "rejections.png")}
<table><tr><th>outcome</th><th>stage</th><th>reason</th><th>candidates</th></tr>{reason_rows}</table>
</body></html>
"""
