from torch import nn

from kdrestore.evaluate.profile import count_macs, count_params, measure_latency


def test_params_and_macs_of_a_known_conv():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_params(conv) == 8 * 3 * 9 + 8
    # one MAC per weight per output pixel (bias adds are not counted by torch's flop counter)
    assert count_macs(conv, (1, 3, 16, 20)) == 8 * 3 * 9 * 16 * 20


def test_latency_reports_median_and_throughput():
    lat = measure_latency(nn.Conv2d(1, 4, 3, padding=1), (1, 1, 32, 32), repeats=3, warmup=1)
    assert lat.repeats == 3 and lat.min_ms <= lat.median_ms
    assert lat.megapixels_per_s > 0
