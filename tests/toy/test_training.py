"""A few optimisation steps of each toy trainer lower its loss (no full training in tests)."""

from __future__ import annotations

import pytest
import torch

from mmada_bench.toy.images import load_tensors
from mmada_bench.toy.judge_training import JudgeTrainConfig, accuracy, train_judge
from mmada_bench.toy.vq_training import LabelHead, VQTrainConfig, entropy_terms, quantise, train_vq


@pytest.fixture(scope="module")
def images():
    return load_tensors("train", 64)


def test_vq_loss_decreases_in_a_few_steps(images):
    torch.set_num_threads(1)
    batch = images.subset(slice(0, 8))
    cfg = VQTrainConfig(steps=8, batch_size=8, warmup=1, lr=2e-3)
    model, log = train_vq(batch, cfg, progress=False)
    assert len(log) == 8
    assert log[-1]["total"] < log[0]["total"] and log[-1]["l2"] < log[0]["l2"]
    codes = model.encode(batch.pixels[:2])
    assert codes.shape == (2, 64) and int(codes.max()) < 1024  # 8 x 8 grid, 10-bit codes


def test_label_head_reads_only_the_codes_that_cover_the_shape():
    torch.manual_seed(0)
    head = LabelHead(10)
    q = torch.where(torch.randn(2, 10, 8, 8) > 0, 1.0, -1.0)
    masks = torch.zeros(2, 1, 64, 64)
    masks[0, 0, 3, 5] = 1.0  # one pixel: code (0, 0) of image 0
    masks[1, 0, 60:, 60:] = 1.0  # code (7, 7) of image 1
    shapes, colors = torch.tensor([2, 0]), torch.tensor([5, 1])
    logits = head.linear(torch.stack([q[0, :, 0, 0], q[1, :, 7, 7]]))
    expected = (torch.nn.functional.cross_entropy(logits[:, :3], shapes)
                + torch.nn.functional.cross_entropy(logits[:, 3:], colors))
    assert torch.allclose(head.loss(q, masks, shapes, colors), expected)
    q_elsewhere = q.clone()
    q_elsewhere[:, :, 4, 4] *= -1  # a background code: no part of the loss
    assert torch.allclose(head.loss(q_elsewhere, masks, shapes, colors), expected)


def test_label_term_is_trained_and_logged(images):
    torch.set_num_threads(1)
    batch = images.subset(slice(0, 8))
    _, log = train_vq(batch, VQTrainConfig(steps=6, batch_size=8, warmup=1, lr=2e-3, label_weight=0.5), progress=False)
    assert log[0]["labels"] > 1.0 and log[-1]["labels"] < log[0]["labels"]
    _, plain = train_vq(batch, VQTrainConfig(steps=1, batch_size=8, warmup=1, label_weight=0.0), progress=False)
    assert plain[0]["labels"] == 0.0 and plain[0]["total"] < log[0]["total"]


def test_quantiser_is_sign_forward_identity_backward():
    z = torch.tensor([[-0.3, 0.0, 2.0]], requires_grad=True)
    q = quantise(z)
    assert q.tolist() == [[-1.0, -1.0, 1.0]]
    q.sum().backward()
    assert z.grad.tolist() == [[1.0, 1.0, 1.0]]


def test_entropy_terms_bounds():
    confident = torch.full((4, 10, 2, 2), 20.0)  # every position the same, certain code
    per_position, usage = entropy_terms(confident, 1.0)
    assert per_position < 1e-3 and usage < 1e-3
    uniform = torch.zeros(4, 10, 2, 2)  # every code equally likely
    per_position, usage = entropy_terms(uniform, 1.0)
    assert per_position == pytest.approx(10 * torch.log(torch.tensor(2.0)).item(), rel=1e-5)


def test_judge_loss_decreases_in_a_few_steps(images):
    torch.set_num_threads(1)
    judge, log = train_judge(images, JudgeTrainConfig(epochs=10, batch_size=32, lr=3e-3), progress=False,
                             max_steps=12)
    assert len(log) == 12
    assert sum(r["loss"] for r in log[-3:]) < sum(r["loss"] for r in log[:3])
    scores = accuracy(judge, images)
    assert scores["images"] == 64 and 0.0 <= scores["both"] <= min(scores["shape"], scores["color"])


def test_training_is_deterministic(images):
    torch.set_num_threads(1)
    batch = images.subset(slice(0, 8))
    cfg = VQTrainConfig(steps=2, batch_size=4, warmup=1)
    first, _ = train_vq(batch, cfg, progress=False)
    second, _ = train_vq(batch, cfg, progress=False)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    judge_a, _ = train_judge(images, JudgeTrainConfig(), progress=False, max_steps=2)
    judge_b, _ = train_judge(images, JudgeTrainConfig(), progress=False, max_steps=2)
    for (name, a), (_, b) in zip(judge_a.net.state_dict().items(), judge_b.net.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
