"""The code probe: codes become exact ±1 digit maps, its reader learns a label the codes carry and not one
they do not, and bad input stops with one line."""

from __future__ import annotations

import pytest
import torch

from mmada_bench.toy import code_probe


def test_bit_maps_hold_each_codes_binary_digits_in_grid_order():
    codes = torch.tensor([[5, 0, 1023, 2]])  # a 2×2 grid of 10-bit codes
    maps = code_probe.code_bit_maps(codes, bits=10)
    assert maps.shape == (1, 10, 2, 2) and set(maps.unique().tolist()) == {-1.0, 1.0}
    assert maps[0, :3, 0, 0].tolist() == [1.0, -1.0, 1.0]  # 5 = 0b101, lowest digit first
    weights = 2 ** torch.arange(10).view(10, 1, 1)
    assert torch.equal(((maps[0] > 0).long() * weights).sum(0).flatten(), codes[0])  # the digits give the codes back


def test_bit_maps_reject_codes_that_do_not_fit():
    with pytest.raises(ValueError, match="square grid"):
        code_probe.code_bit_maps(torch.zeros(1, 5, dtype=torch.long), bits=10)
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        code_probe.code_bit_maps(torch.tensor([[16, 0, 0, 0]]), bits=4)


def _planted(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 4×4 grids of 6-bit codes whose label is whether any code has its top digit set in the
    top-left quarter of the grid: a local pattern, found wherever it sits, as a shape's edge is."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 32, (n, 16), generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    corner = torch.tensor([0, 1, 4, 5])
    pick = corner[torch.randint(0, 4, (n,), generator=generator)]
    codes[labels == 1, pick[labels == 1]] += 32
    return code_probe.code_bit_maps(codes, bits=6), labels


def test_the_reader_reads_what_the_codes_carry_and_not_what_they_do_not():
    train, test = _planted(600, 0), _planted(300, 1)
    carried = code_probe.probe_attribute("planted", ["no", "yes"], train, test, epochs=15, seed=0)
    assert carried.accuracy > 0.95 and carried.test_images == 300 and carried.train_images == 600
    assert sum(map(sum, carried.confusion)) == 300
    shuffled = (train[0], train[1][torch.randperm(600, generator=torch.Generator().manual_seed(2))])
    test_shuffled = (test[0], test[1][torch.randperm(300, generator=torch.Generator().manual_seed(3))])
    uncarried = code_probe.probe_attribute("shuffled", ["no", "yes"], shuffled, test_shuffled, epochs=15, seed=0)
    assert uncarried.accuracy < 0.65  # chance is 0.5: labels shuffled away from their codes


def test_the_reader_is_deterministic_for_a_seed():
    maps, labels = _planted(128, 4)
    first = code_probe.train_reader(maps, labels, classes=2, epochs=2, seed=7)
    second = code_probe.train_reader(maps, labels, classes=2, epochs=2, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True))


def test_confusion_matrix_counts_truth_by_prediction():
    matrix = code_probe.confusion_matrix(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 1]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


@pytest.mark.parametrize(("argv", "message"), [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--vq", "/nonexistent/vq"], "no MAGVIT-v2 config.json"),
])
def test_bad_input_stops_with_one_line(argv, message, capsys):
    assert code_probe.main([*argv, "--no-progress"]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
