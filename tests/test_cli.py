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
