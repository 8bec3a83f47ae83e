import argparse
import subprocess
import sys

import pytest

import evonorm_cli
from gp import zoo


def test_zoo_lists_every_layer_with_formula(capsys):
    assert evonorm_cli.main(["zoo"]) == 0
    out = capsys.readouterr().out
    for name in zoo.names():
        assert name in out
    assert "x·σ(v1·x) / std_group(x)" in out


@pytest.mark.parametrize("layer", ["evonorm_b0", "div(x, max(std_batch(x), add(mul(v1, x), std_instance(x))))",
                                   str(zoo.get("evonorm_b0"))])
def test_show_accepts_name_expression_and_text(layer, capsys):
    assert evonorm_cli.main(["show", layer]) == 0
    out = capsys.readouterr().out
    assert zoo.get("evonorm_b0").key in out
    assert "batch stats yes" in out
    assert "live nodes  6 of 6" in out


@pytest.mark.parametrize("layer, fragment", [
    ("bn_rleu", "'bn_rleu' is not a zoo layer"),
    ("div(x, foo(x))", "unknown name 'foo'"),
    ("t1 = mul(x, t2)", "'t2' is not an input or an earlier node"),
])
def test_bad_layer_is_one_line_exit_2(layer, fragment):
    proc = subprocess.run([sys.executable, "-m", "evonorm_cli", "show", layer], capture_output=True, text=True)
    assert proc.returncode == 2
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_explains_commands():
    proc = subprocess.run([sys.executable, "-m", "evonorm_cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "zoo" in proc.stdout and "show" in proc.stdout


def _subcommands() -> dict:
    parser = evonorm_cli.build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_each_subcommand_help_has_an_example_of_itself(name):
    text = _subcommands()[name].format_help()
    examples = text.split("examples:\n", 1)
    assert len(examples) == 2, f"evonorm {name} --help has no examples"
    assert f"  evonorm {name}" in examples[1]


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_each_option_states_its_default(name):
    for action in _subcommands()[name]._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        assert "default" in (action.help or ""), f"evonorm {name} {action.option_strings[0]}: no default stated"


def test_data_help_says_the_default_downloads_and_fails_offline():
    text = " ".join(_subcommands()["eval"].format_help().split())
    assert "cifar10, a download: it fails offline" in text


def test_search_help_says_which_flags_resume_honours():
    text = " ".join(_subcommands()["search"].format_help().split())
    assert "it honours only --budget, --executor, --workers, --data, --device and --ray-address" in text
    assert "--resume-run RUN_ID rebuilds the search from the tracking store into a new directory (--out) and " \
           "honours --budget, --executor, --workers and --ray-address" in text


def _run(*args):
    return subprocess.run([sys.executable, "-m", "evonorm_cli", *args], capture_output=True, text=True)


def test_eval_smoke_json(cifar_dir):
    import json

    proc = _run("eval", "evonorm_s0", "--preset", "smoke", "--data", str(cifar_dir), "--arch", "resnet50",
                "--steps", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "ok" and list(result["accuracies"]) == ["resnet50"] and result["step"] == 3


def test_eval_rejects_overflow_before_training_with_table(cifar_dir):
    proc = _run("eval", "exp(exp(exp(square(x))))", "--preset", "smoke", "--data", str(cifar_dir))
    assert proc.returncode == 0, proc.stderr
    assert "status   rejected at stage static: output not finite" in proc.stdout
    assert "resnet50" in proc.stdout and "efficientnet_b0" in proc.stdout


@pytest.mark.parametrize("args, fragment", [
    (["--data", "/nonexistent/cifar"], "no train/ directory in /nonexistent/cifar"),
    (["--arch", "vgg"], "unknown architecture 'vgg'"),
    (["--preset", "quick"], "unknown preset 'quick'"),
])
def test_eval_bad_options_are_one_line(args, fragment):
    proc = _run("eval", "bn_relu", "--preset", "smoke", *args) if "--preset" not in args else \
        _run("eval", "bn_relu", *args)
    assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr
