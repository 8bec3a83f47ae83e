import math

from analysis.sweep import plot


def test_sweep_plot_is_written_with_a_diverged_point(tmp_path):
    curves = {"bn_relu": [(128, 0.6, 0.01), (8, 0.4, 0.05), (2, math.nan, math.nan)],
              "evonorm_s0": [(128, 0.58, 0.02), (8, 0.57, 0.01), (2, 0.55, 0.03)]}
    out = plot(curves, tmp_path / "sub" / "sweep.png", title="test")
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
