"""WISE end to end: tiny MMaDA draws, a judge on a real loopback HTTP server scores, the run logs every
judge call in the request log (a rerun asks the judge nothing), and judge failures are one line."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.results.reader import RunFolder, find_entry
from mmada_bench.runner import RunConfig, run_suite
from mmada_bench.scorers.wise import JudgeError, legacy_wiscore
from mmada_bench.tasks import get_task
from mmada_bench.tasks.t2i.wise import JUDGE_KEY_ENV, JUDGE_MODEL_ENV, JUDGE_URL_ENV

FIXTURES = Path(__file__).parent.parent / "fixtures" / "t2i"
SAMPLER = {"timesteps": "2", "max_text_len": "16", "guidance_scale": "0"}


class Judge:
    """A loopback OpenAI-compatible chat endpoint: scores by keyword in the prompt, counts calls."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with judge.lock:
                    judge.calls.append({"body": body, "auth": self.headers.get("Authorization")})
                text = json.dumps({"choices": [{"message": {"content": judge.reply(body)}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def reply(body: dict) -> str:
        user = body["messages"][-1]["content"]
        text = next(p["text"] for p in user if p["type"] == "text")
        image = next(p["image_url"]["url"] for p in user if p["type"] == "image_url")
        assert base64.b64decode(image.split(",", 1)[1]).startswith(b"\x89PNG")
        if "mariachi" in text:
            return "I cannot grade this."  # never parses: three attempts, then no score
        if "maple" in text:
            return "Consistency: 1\nRealism: 2\nAesthetic Quality: 0"
        return "Consistency: 2\nRealism: 1\nAesthetic Quality: 1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def judge(monkeypatch) -> Iterator[Judge]:
    server = Judge()
    monkeypatch.setenv(JUDGE_URL_ENV, server.url)
    monkeypatch.setenv(JUDGE_MODEL_ENV, "loopback-judge")
    monkeypatch.setenv(JUDGE_KEY_ENV, "secret-key")
    yield server
    server.close()


def _run(out: Path, adapter, tiny_path, tasks=("wise",)) -> dict:
    config = RunConfig(model=str(tiny_path), tasks=list(tasks), output=out, data_dir=FIXTURES, progress=False,
                       bootstrap_iters=20, sampler=SAMPLER)
    return run_suite(config, adapter=adapter, out=open(out.parent / f"{out.name}.log", "a"))  # noqa: SIM115


def test_wise_judges_through_the_request_log_and_never_twice(judge, tiny_adapter, tiny_path, tmp_path, capfd):
    out = tmp_path / "run"
    first = _run(out, tiny_adapter, tiny_path)
    # 3 prompts: two parse at once, the unparseable one is asked three times (official retry rule)
    assert len(judge.calls) == 2 + 3
    assert all(c["auth"] == "Bearer secret-key" and c["body"]["model"] == "loopback-judge" for c in judge.calls)
    assert {c["body"]["temperature"] for c in judge.calls} == {0.0}
    err = capfd.readouterr().err
    assert "wise: the judge's replies for prompt_id 2 could not be parsed after 3 attempts" in err
    entry = find_entry(first, "wise")
    metrics = entry["metrics"]
    assert metrics["wiscore[CULTURE]"]["value"] == pytest.approx(legacy_wiscore(2, 1, 1))
    assert metrics["wiscore[BIOLOGY]"]["value"] == pytest.approx(legacy_wiscore(1, 2, 0))
    overall = metrics["wiscore"]
    assert overall["value"] is None and "1..1000" in overall["extra"]["reason"]
    assert overall["extra"]["protocol"] == "legacy" and overall["extra"]["judge"]["model"] == "loopback-judge"
    assert overall["extra"]["unparsed_prompt_ids"] == ["2"] and "secret" not in json.dumps(first, default=str)
    samples = {s["doc_id"]: s for s in RunFolder.open(out).samples("wise")}
    assert samples["2"]["extra"]["judge"][0]["status"] == "extract_fail"
    assert samples["2"]["extra"]["judge"][0]["judge_calls"] == 3 and samples["2"]["metrics"]["wiscore"] is None
    log = [json.loads(line) for line in (out / "requests" / "rank0.jsonl").read_text().splitlines()]
    assert sorted(r["method"] for r in log) == ["answer_about_image"] * 5 + ["generate_images"] * 3
    # WISE's own layout: <prompt_id>.png, the same bytes as the artifact
    for doc_id, sample in samples.items():
        exported = out / "wise_images" / f"{doc_id}.png"
        assert exported.read_bytes() == (out / sample["predictions"]["images"][0]["path"]).read_bytes()

    second = _run(out, tiny_adapter, tiny_path)
    assert len(judge.calls) == 5  # every judge reply came from the log
    assert find_entry(second, "wise")["cost"]["requests_computed"] == 0
    assert find_entry(second, "wise")["metrics"] == metrics


def test_unreachable_judge_is_one_line_and_keeps_the_images(judge, tiny_adapter, tiny_path, tmp_path, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(JUDGE_URL_ENV, f"http://127.0.0.1:{port}/v1")
    out = tmp_path / "run"
    with pytest.raises(JudgeError, match="unreachable") as err:
        _run(out, tiny_adapter, tiny_path)
    assert "\n" not in str(err.value) and "127.0.0.1" in str(err.value)
    assert len(list((out / "artifacts").rglob("*.png"))) == 3
    monkeypatch.setenv(JUDGE_URL_ENV, judge.url)
    resumed = _run(out, tiny_adapter, tiny_path)
    cost = find_entry(resumed, "wise")["cost"]
    assert cost["requests_from_log"] == 3 and cost["requests_computed"] == 0  # the images were not redrawn
    assert len(judge.calls) == 5


def test_wise_configuration_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(JUDGE_URL_ENV, raising=False)
    with pytest.raises(ConfigError, match=JUDGE_URL_ENV) as err:
        get_task("wise").impl.load(FIXTURES, False)
    assert "\n" not in str(err.value)
    monkeypatch.setenv(JUDGE_URL_ENV, "http://127.0.0.1:9/v1")
    monkeypatch.setenv(JUDGE_MODEL_ENV, "m")
    with pytest.raises(DataError, match="no WISE prompt files"):
        get_task("wise").impl.load(tmp_path, False)
    # a legacy-range prompt scored with WISE_Verified's id ranges (650 is SPACE in legacy, BIOLOGY in verified)
    (tmp_path / "wise_verified").mkdir()
    (tmp_path / "wise_verified" / "a.json").write_text(json.dumps([{
        "prompt_id": 650, "Prompt": "p", "Explanation": "e", "Category": "Space", "Subcategory": "s"}]))
    with pytest.raises(DataError, match="prompt_id 650"):
        get_task("wise_verified").impl.load(tmp_path, False)
    (tmp_path / "wise").mkdir()
    (tmp_path / "wise" / "bad.json").write_text('[{"prompt_id": 3, "Prompt": "x"}]')
    with pytest.raises(DataError, match=r"bad\.json:\[0\]: Explanation"):
        get_task("wise").impl.load(tmp_path, False)


def test_verified_protocol_scores_binary_replies(tmp_path, tiny_adapter, tiny_path, monkeypatch):
    """WISE_Verified through the same machinery: binary replies (with a reasoning block), its weights."""
    class Binary(Judge):
        @staticmethod
        def reply(body: dict) -> str:
            return "<think>looks right</think>\nScore: 1"

    server = Binary()
    try:
        monkeypatch.setenv(JUDGE_URL_ENV, server.url)
        monkeypatch.setenv(JUDGE_MODEL_ENV, "qwen-loopback")
        monkeypatch.delenv(JUDGE_KEY_ENV, raising=False)
        data = tmp_path / "data"
        (data / "wise_verified").mkdir(parents=True)
        (data / "wise_verified" / "p.json").write_text((FIXTURES / "wise" / "cultural_common_sense.json").read_text())
        config = RunConfig(model=str(tiny_path), tasks=["wise_verified"], output=tmp_path / "run", data_dir=data,
                           progress=False, bootstrap_iters=0, sampler=SAMPLER)
        results = run_suite(config, adapter=tiny_adapter, out=open(tmp_path / "log", "w"))  # noqa: SIM115
    finally:
        server.close()
    metrics = find_entry(results, "wise_verified")["metrics"]
    assert metrics["wiscore[CULTURE]"]["value"] == 1.0
    assert metrics["wiscore"]["extra"]["protocol"] == "verified"
    assert metrics["wiscore"]["extra"]["weights"]["TIME"] == 0.12
    assert all(c["auth"] is None for c in server.calls) and len(server.calls) == 2
    assert server.calls[0]["body"]["chat_template_kwargs"] == {"enable_thinking": False}
    assert Image.open(tmp_path / "run" / "wise_verified_images" / "1.png").size == (64, 64)
