import pytest
import torch

import architectures
from architectures import create_arch
from gp import layer_factory, zoo


@pytest.mark.parametrize("name, expected", [("resnet50", 25_549_352), ("mobilenetv2", 3_504_872),
                                            ("efficientnet_b0", 5_288_548)])
def test_reference_parameter_counts(name, expected):
    """Width 1.0, BN-ReLU / BN-Swish, 1000 classes: the reference models' counts."""
    model = create_arch(name, num_classes=1000, width=1.0, cifar=False)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_paper_widths_are_the_defaults():
    assert [architectures.default_width(n) for n in ("resnet50", "mobilenetv2", "efficientnet_b0")] == [0.25, 0.5, 0.5]
    assert architectures.default_width("plain") == 0.25  # not the paper's: tiny_plain's


def test_plain_net_is_a_chain_of_seven_norm_acts_without_shortcuts():
    """Every site is on the only path: replacing one site by a constant makes the output constant."""
    from gp import GenomeLayer

    torch.manual_seed(0)
    model = create_arch("plain", layer_factory(zoo.get("bn_relu")), width=0.25)
    sites = [m for m in model.modules() if isinstance(m, GenomeLayer)]
    assert len(sites) == 7
    assert [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == [16, 16, 16, 32, 32, 64, 64]
    x = torch.randn(4, 3, 16, 16)
    model.train()(x)  # running statistics that are not the initial ones
    model.eval()
    out = model(x)
    assert not torch.allclose(out, out[:1].expand_as(out))  # the outputs differ between samples
    for site in sites:
        handle = site.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        out = model(x)
        handle.remove()
        assert torch.allclose(out, out[:1].expand_as(out))  # no path around the silenced site


@pytest.mark.parametrize("name", architectures.names())
def test_cifar_form_keeps_resolution_in_the_first_two_downsamplings(name):
    feats = {}
    for cifar in (True, False):
        model = create_arch(name, width=0.25, cifar=cifar)
        body = model.blocks if name == "resnet50" else model.features
        stem = model.stem if name in ("resnet50", "plain") else torch.nn.Identity()
        with torch.no_grad():
            feats[cifar] = body(stem(torch.randn(2, 3, 64, 64))).shape[-1]
    assert feats[True] == (2 if name == "plain" else 4) * feats[False]  # plain has one stride-2 stem


@pytest.mark.parametrize("layer", zoo.names())
@pytest.mark.parametrize("name", architectures.names())
@pytest.mark.parametrize("no_act", ["affine", "candidate"])
def test_every_anchor_runs_with_every_zoo_layer(name, layer, no_act):
    torch.manual_seed(0)
    model = create_arch(name, layer_factory(zoo.get(layer), no_act=no_act), width=0.0625)
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    out.square().mean().backward()
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.grad is not None and torch.isfinite(w.grad).all() for w in convs)


def test_candidate_replaces_every_norm_act():
    from gp import Affine, GenomeLayer

    for name in architectures.names():
        model = create_arch(name, layer_factory(zoo.get("evonorm_s0")), width=0.0625)
        kinds = {type(m) for m in model.modules()}
        assert torch.nn.BatchNorm2d not in kinds and GenomeLayer in kinds
        assert (Affine in kinds) == (name not in ("resnet50", "plain"))  # linear bottlenecks: the affine policy


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(KeyError, match="resnet50, mobilenetv2, efficientnet_b0, plain"):
        create_arch("vgg16")
