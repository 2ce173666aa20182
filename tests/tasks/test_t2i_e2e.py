"""The four text-to-image benchmarks through the real CLI, offline: tiny MMaDA, tiny CLIP / ImageReward /
Mask2Former folders, a loopback judge; and a run killed with SIGKILL mid-generation that resumes
without losing or redrawing an image."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from mmada_bench.results.reader import RunFolder

FIXTURES = Path(__file__).parent.parent / "fixtures" / "t2i"
GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mmada_bench.cli", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class _Judge(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        body = json.dumps({"choices": [{"message": {"content": "Consistency: 2\nRealism: 1\nAesthetic Quality: 2"}}]})
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        return None


@pytest.mark.slow
def test_all_four_t2i_tasks_run_offline_through_the_cli(tmp_path, tiny_path):
    from mmada_bench.scorers.geneval_detector import build_random_detector

    data = tmp_path / "data"
    for task in ("clipscore", "imagereward", "geneval", "wise"):
        shutil.copytree(FIXTURES / task, data / task)
    build_random_detector(data / "geneval" / "detector")
    reward = data / "imagereward" / "model"
    shutil.copytree(GOLDEN / "image_reward_tiny" / "tokenizer", reward / "tokenizer")
    for name in ("ImageReward.pt", "med_config.json"):
        shutil.copyfile(GOLDEN / "image_reward_tiny" / name, reward / name)
    (reward / "scorer.json").write_text(json.dumps({"vit_num_heads": 3}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "MMADA_BENCH_CLIP": str(GOLDEN / "clip_tiny" / "model"),
           "MMADA_BENCH_GENEVAL_OPTIONS": "threshold=0,counting_threshold=0",
           "MMADA_BENCH_WISE_JUDGE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1",
           "MMADA_BENCH_WISE_JUDGE_MODEL": "loopback", "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "MMADA_BENCH_SCORER_DEVICE": "cpu"}
    out = tmp_path / "run"
    args = ["--model", str(tiny_path), "--tasks", "geneval,wise,clipscore,imagereward", "--data-dir", str(data),
            "--output", str(out), "--no-progress", "--bootstrap-iters", "20",
            "--sampler", "timesteps=2,max_text_len=16,geneval.images_per_prompt=2"]
    try:
        first = _cli(env, *args)
        stdout, stderr = first.communicate(timeout=300)
        assert first.returncode == 0, stderr[-3000:]
        assert _Judge.calls == 3
        again = _cli(env, *args)
        _, stderr = again.communicate(timeout=300)
        assert again.returncode == 0, stderr[-3000:]
        assert _Judge.calls == 3  # judge replies served from the request log
    finally:
        server.shutdown()
        server.server_close()
    run = RunFolder.open(out)
    for task, images in (("geneval", 6), ("wise", 3), ("clipscore", 3), ("imagereward", 3)):
        entry = run.entry(task)
        assert entry["cost"]["requests_computed"] == 0, task  # the second run computed nothing
        samples = run.samples(task)
        assert sum(len(s["predictions"]["images"]) for s in samples) == images
        sheet = Image.open(out / f"contact_sheet_{task}.png")
        assert sheet.width >= 128 and sheet.height >= 128
    metrics = {task: run.entry(task)["metrics"] for task in ("geneval", "wise", "clipscore", "imagereward")}
    assert metrics["clipscore"]["clip_score"]["value"] is not None
    assert metrics["imagereward"]["image_reward"]["value"] is not None
    assert metrics["wise"]["wiscore[CULTURE]"]["value"] == pytest.approx((0.7 * 2 + 0.2 + 0.1 * 2) / 2)
    geneval = metrics["geneval"]["geneval_overall"]
    assert 0.0 <= geneval["value"] <= 1.0 and "Mask2Former" in geneval["extra"]["detector"]
    assert geneval["extra"]["options"]["threshold"] == 0
    assert {k for k in metrics["geneval"] if k.startswith("geneval[")} == \
        {"geneval[single_object]", "geneval[colors]", "geneval[counting]"}
    assert sorted(p.name for p in (out / "geneval").iterdir()) == ["00000", "00001", "00002"]
    assert sorted(p.name for p in (out / "wise_images").iterdir()) == ["1.png", "2.png", "701.png"]


@pytest.mark.slow
def test_kill_9_mid_generation_then_rerun_loses_and_repeats_nothing(tmp_path, tiny_path):
    """GenEval without a detector (images only): 6 prompts x 2 images, one image per batch; SIGKILL once
    a few images are logged, rerun, and compare with an uninterrupted run byte for byte."""
    data = tmp_path / "data" / "geneval"
    data.mkdir(parents=True)
    objects = ["cup", "dog", "car", "bird", "clock", "vase"]
    data.joinpath("evaluation_metadata.jsonl").write_text("".join(
        json.dumps({"tag": "single_object", "include": [{"class": o, "count": 1}], "prompt": f"a photo of a {o}"})
        + "\n" for o in objects))
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}

    def args(out: Path) -> list[str]:
        return ["--model", str(tiny_path), "--tasks", "geneval", "--data-dir", str(data.parent), "--output", str(out),
                "--no-progress", "--batch-size", "1", "--bootstrap-iters", "0",
                "--sampler", "timesteps=25,max_text_len=16,guidance_scale=2,images_per_prompt=2"]

    killed = tmp_path / "killed"
    proc = _cli(env, *args(killed))
    log = killed / "requests" / "rank0.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]
    assert 3 <= len(logged) < 12
    before = {r["key"]: (killed / "artifacts" / r["artifact"]["path"]).stat().st_mtime_ns for r in logged}

    resumed = _cli(env, *args(killed))
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-3000:]
    whole = _cli(env, *args(tmp_path / "whole"))
    _, stderr = whole.communicate(timeout=300)
    assert whole.returncode == 0, stderr[-3000:]

    cost = RunFolder.open(killed).entry("geneval")["cost"]
    assert cost["requests_from_log"] == len(logged) and cost["requests_computed"] == 12 - len(logged)
    for key, mtime in before.items():  # logged images were served, never redrawn or rewritten
        assert (killed / "artifacts" / key[:2] / f"{key}.png").stat().st_mtime_ns == mtime
    lines = (killed / "requests" / "rank0.jsonl").read_text().splitlines()
    assert len({json.loads(line)["key"] for line in lines if line.endswith("}")}) == 12
    files = {p.relative_to(killed / "artifacts"): p.read_bytes() for p in (killed / "artifacts").rglob("*.png")}
    reference = {p.relative_to(tmp_path / "whole" / "artifacts"): p.read_bytes()
                 for p in (tmp_path / "whole" / "artifacts").rglob("*.png")}
    assert len(reference) == 12 and files == reference
