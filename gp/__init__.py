"""evonorm's search space: ops, genomes, DEAP primitive set, variation, compiler, zoo, search."""

from gp import zoo
from gp.checks import ProbeReport, fingerprint, probe
from gp.compiler import Affine, GenomeLayer, compile_layer, layer_factory
from gp.deap_tools import from_tree, make_pset, make_toolbox, mut_paper, to_tree
from gp.export import export_source
from gp.genome import Genome, GenomeError, Node
from gp.ops import OPS
from gp.printing import formula
from gp.space import BATCH_INDEPENDENT, PAPER, SearchSpace
from gp.variation import mutate, random_genome

__all__ = [
    "OPS", "Affine", "BATCH_INDEPENDENT", "Genome", "GenomeError", "GenomeLayer", "Node", "PAPER",
    "ProbeReport", "SearchSpace", "compile_layer", "export_source", "fingerprint", "formula", "from_tree",
    "layer_factory", "make_pset", "make_toolbox", "mut_paper", "mutate", "probe", "random_genome",
    "to_tree", "zoo",
]
