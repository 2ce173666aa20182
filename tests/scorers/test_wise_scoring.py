"""WISE reply parsing, judge retries and WiScore aggregation against the golden cases made with WISE's
own code (every case must match: parsed scores, status, judge calls and score line exactly; numbers
within 1e-9, counts and outcome exactly), plus the judge client against a loopback HTTP server."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.scorers import wise

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "wise"
CASES = json.loads((GOLDEN / "cases.json").read_text(encoding="utf-8"))
NUM_TOL = 1e-9


def _prompt(prompt_id: int, subcategory: str = "Unused") -> wise.WisePrompt:
    return wise.WisePrompt(prompt_id, f"prompt {prompt_id}", f"explanation {prompt_id}", "Cat", subcategory)


class ScriptedJudge:
    """Returns the case's reply on every attempt (temperature 0), or one reply per attempt."""

    def __init__(self, case: dict) -> None:
        self.replies = case.get("replies_per_attempt") or [case["reply"]] * 10
        self.calls: list[tuple[list[dict[str, Any]], bytes | None]] = []

    def __call__(self, messages: list[dict[str, Any]], image: bytes | None) -> str:
        self.calls.append((messages, image))
        return self.replies[len(self.calls) - 1]


def _reply_cases() -> list[tuple[str, dict]]:
    return [("legacy", c) for c in CASES["legacy_replies"]] + [
        ("verified", c) for c in CASES["verified_replies"]
    ]


@pytest.mark.parametrize(("protocol", "case"), _reply_cases(), ids=[c["id"] for _, c in _reply_cases()])
def test_golden_reply(protocol: str, case: dict) -> None:
    expected = case["expected"]
    record = expected["score_record"]
    prompt = _prompt(case["prompt_id"], record["Subcategory"] if record else "Unused")
    judge = ScriptedJudge(case)
    outcome = wise.judge_prompt(protocol, prompt, b"\x89PNG\r\n\x1a\n", judge)
    assert outcome.parsed == expected["parsed"]
    assert outcome.status == expected["status"]
    assert outcome.judge_calls == expected["judge_calls"] == len(judge.calls)
    assert outcome.score_record == record
    if record is not None:
        assert list(outcome.score_record) == list(record)  # same key order as the official line
    if "cleaned" in expected:
        assert outcome.cleaned == expected["cleaned"]
    # A harness that asks once still gets the same parse of the first reply.
    first = case.get("reply") or case["replies_per_attempt"][0]
    assert wise.parse_reply(protocol, first).scores == expected["parsed"]


def test_golden_constants_match() -> None:
    for name in ("legacy", "verified"):
        proto, want = wise.PROTOCOLS[name], CASES[name]
        assert {k: list(v) for k, v in proto.ranges.items()} == want["ranges"]
        assert dict(proto.weights) == want["weights"]
        assert proto.max_extract_retries == want["max_extract_retries"]
    assert CASES["source"] == wise.WISE_SOURCE


@pytest.mark.parametrize("row", CASES["legacy_extract_scores_history"], ids=lambda r: r["reply"][:20])
def test_legacy_parse_follows_head(row: dict) -> None:
    assert wise.extract_legacy_scores(row["reply"]) == row["HEAD"]


def _check_aggregate(got: wise.WiseAggregate, exp: dict) -> None:
    assert got.outcome == exp["outcome"]
    if exp["overall"] is None:
        assert got.overall is None
    else:
        assert got.overall == pytest.approx(exp["overall"], abs=NUM_TOL)
    if "category_average" in exp:
        assert got.category_samples == exp["category_samples"]
        assert set(got.category_average) == set(exp["category_average"])
        for cat, value in exp["category_average"].items():
            assert got.category_average[cat] == pytest.approx(value, abs=NUM_TOL)
    if "file_reports" in exp:
        assert set(got.file_reports) == set(exp["file_reports"])
        for name, cats in exp["file_reports"].items():
            assert set(got.file_reports[name]) == set(cats)
            for cat, rep in cats.items():
                assert got.file_reports[name][cat]["samples"] == rep["samples"]
                assert got.file_reports[name][cat]["average"] == pytest.approx(rep["average"], abs=NUM_TOL)
    if "missing_prompt_ids_count" in exp:
        assert len(got.missing_prompt_ids) == exp["missing_prompt_ids_count"]
        assert (
            got.missing_prompt_ids[: len(exp["missing_prompt_ids_first"])] == exp["missing_prompt_ids_first"]
        )
    if "single_file_missing_prompt_ids" in exp:
        assert got.single_file_missing_prompt_ids == exp["single_file_missing_prompt_ids"]


@pytest.mark.parametrize("case", CASES["aggregations"], ids=[c["name"] for c in CASES["aggregations"]])
def test_golden_aggregation_from_files(case: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, lines in case["files"]:
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the official command runs inside the folder, so reports use bare names
    got = wise.aggregate_score_files(case["protocol"], [name for name, _ in case["files"]], case["category"])
    _check_aggregate(got, case["expected"])
    assert json.dumps(got.as_record())


@pytest.mark.parametrize("case", CASES["aggregations"], ids=[c["name"] for c in CASES["aggregations"]])
def test_golden_aggregation_from_lines(case: dict) -> None:
    files = [(name, "\n".join(lines) + "\n") for name, lines in case["files"]]
    _check_aggregate(wise.aggregate_score_lines(case["protocol"], files, case["category"]), case["expected"])


def _full_records(protocol: str, value: float) -> list[dict[str, Any]]:
    keys = wise.PROTOCOLS[protocol].score_keys
    return [{"prompt_id": i, "Subcategory": "x", **{k: value for k in keys}} for i in range(1, 1001)]


def test_aggregation_outcomes_and_quirks() -> None:
    # In-memory records, e.g. from JudgeOutcome.score_record: all ids, perfect scores -> overall 1.
    got = wise.aggregate_score_records("legacy", _full_records("legacy", 2.0))
    assert got.outcome == wise.OUTCOME_OVERALL and got.overall == pytest.approx(1.0)
    # Every line of a category unusable (ids still present) -> overall cannot be computed.
    records = _full_records("verified", 1.0)
    for r in records[880:]:
        r["score"] = 2
    got = wise.aggregate_score_records("verified", records)
    assert got.outcome == wise.OUTCOME_NOT_COMPUTABLE and "CHEMISTRY" not in got.category_average
    # A specific category over several files: no id check, no overall.
    got = wise.aggregate_score_lines("legacy", [("a", ['{"prompt_id": 3, "consistency": 2, "realism": 2, '
                                                       '"aesthetic_quality": 2}']), ("b", "")], "culture")  # fmt: skip
    assert got.outcome == wise.OUTCOME_SKIPPED and got.category_samples == {"CULTURE": 1}
    # A JSON line that is not an object makes the official calculator drop the whole file.
    got = wise.aggregate_score_lines("legacy", [("a", "[1, 2]\n")], "all")
    assert got.outcome == wise.OUTCOME_NO_VALID_DATA and "a" in got.rejected_files
    # Booleans count as numbers; a missing file is rejected, not fatal.
    assert wise.image_wiscore("verified", {"score": True}) == (1.0, "")
    got = wise.aggregate_score_files("legacy", ["/nonexistent/scores.jsonl"], "culture")
    assert got.outcome == wise.OUTCOME_NO_VALID_DATA
    with pytest.raises(ConfigError, match="category"):
        wise.aggregate_score_lines("legacy", [], "everything")
    with pytest.raises(ConfigError, match="protocol"):
        wise.get_protocol("v2")


def test_legacy_wiscore_formula() -> None:
    assert wise.legacy_wiscore(2, 1, 0) == pytest.approx((1.4 + 0.2) / 2)
    assert wise.image_wiscore("legacy", {"consistency": 2, "realism": "1", "aesthetic_quality": 0})[0] is None


def test_unparseable_reply_is_a_flag_not_a_crash() -> None:
    for protocol in ("legacy", "verified"):
        for reply in ("", None, "no idea", "Consistency: two"):
            parsed = wise.parse_reply(protocol, reply)
            assert not parsed.complete and parsed.missing


def test_prompt_file_reader(tmp_path: Path) -> None:
    entries = [
        {"Prompt": "A {braced} pastry", "Explanation": "mooncakes", "Category": "Cultural knowledge",
         "Subcategory": "Festival", "prompt_id": 1},
        {"Prompt": "Time", "Explanation": "e", "Category": "time", "Subcategory": "Horizontal time", "prompt_id": 530},
    ]  # fmt: skip
    path = tmp_path / "p.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    prompts = wise.read_wise_prompts(path)
    assert prompts[0] == wise.WisePrompt(
        1, "A {braced} pastry", "mooncakes", "Cultural knowledge", "Festival"
    )
    assert prompts[1].image_name == "530.png"
    # 530 is SPACE in the verified ranges but TIME in the legacy ones.
    assert wise.category_mismatches("verified", prompts) == [530]
    assert wise.category_mismatches("legacy", prompts) == []
    messages = wise.build_judge_messages("legacy", prompts[0])
    text = messages[1]["content"][0]["text"]
    assert 'PROMPT: "A {braced} pastry"' in text and 'EXPLANATION: "mooncakes"' in text
    assert "Consistency" in text and "Aesthetic Quality" in text
    assert "Score: 1" in wise.build_judge_messages("verified", prompts[0])[1]["content"][0]["text"]

    bad = [dict(entries[0], prompt_id="1")]
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(DataError, match=r"p\.json:\[0\]: prompt_id:"):
        wise.read_wise_prompts(path)
    path.write_text(json.dumps([entries[0], entries[0]]), encoding="utf-8")
    with pytest.raises(DataError, match="more than once"):
        wise.read_wise_prompts(path)


def test_template_from_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"name": "official", "system": "s", "user": "P={prompt} E={explanation}"}))
    template = wise.JudgeTemplate.from_file(path)
    assert template.render_user("a", "b") == "P=a E=b" and template.sha256 != wise.LEGACY_TEMPLATE.sha256
    path.write_text(json.dumps({"name": "x", "system": "s", "user": "no placeholders"}))
    with pytest.raises(ConfigError, match="placeholders|contain"):
        wise.JudgeTemplate.from_file(path)


# --------------------------------------------------------------------------------------------------
# Judge client against a loopback OpenAI-compatible server
# --------------------------------------------------------------------------------------------------


class _ChatHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        mode = server.mode
        if mode == "slow":
            time.sleep(1.0)
        if mode == "error":
            payload, status = b'{"error": {"message": "model\\nnot loaded"}}', 500
        elif mode == "garbage":
            payload, status = b"<html>not json</html>", 200
        else:
            reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": server.reply}}]}
            payload, status = json.dumps(reply).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def chat_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    server.daemon_threads = True
    server.requests, server.mode, server.reply = [], "ok", ""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stopper = threading.Timer(60.0, server.shutdown)  # stops itself even if a test hangs
    stopper.daemon = True
    stopper.start()
    try:
        yield server
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _base(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1/"


def test_client_round_trip_legacy(chat_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMADA_TEST_JUDGE_KEY", "sk-test")
    chat_server.reply = "Consistency: 2\nRealism: 1\nAesthetic Quality: 0"
    client = wise.JudgeClient.for_protocol("legacy", _base(chat_server), "gpt-4o-2024-05-13",
                                           "MMADA_TEST_JUDGE_KEY", trust_env=False)  # fmt: skip
    image = _png()
    outcome = wise.judge_prompt("legacy", _prompt(5, "Festival"), image, client.judge)
    assert outcome.status == "ok" and outcome.judge_calls == 1
    assert outcome.score_record == {"prompt_id": 5, "Subcategory": "Festival", "consistency": 2.0,
                                    "realism": 1.0, "aesthetic_quality": 0.0}  # fmt: skip
    (request,) = chat_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "gpt-4o-2024-05-13" and body["temperature"] == 0.0 and body["max_tokens"] == 2000
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    text_part, image_part = user["content"]
    assert 'PROMPT: "prompt 5"' in text_part["text"]
    prefix, data = image_part["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/png;base64" and base64.b64decode(data) == image
    assert "sk-test" not in json.dumps(client.describe())


def test_client_round_trip_verified_strips_thinking(chat_server: ThreadingHTTPServer) -> None:
    chat_server.reply = "<think>maybe 0</think>\n\nScore: 1"
    client = wise.JudgeClient.for_protocol("verified", _base(chat_server), "Qwen3.5-35B-A3B", trust_env=False)
    outcome = wise.judge_prompt("verified", _prompt(641, "State"), _png(), client.judge)
    assert outcome.status == "ok" and outcome.score_record == {
        "prompt_id": 641,
        "Subcategory": "State",
        "score": 1.0,
    }
    body = chat_server.requests[0]["body"]
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["max_tokens"] == 500
    assert "Authorization" not in chat_server.requests[0]["headers"]


@pytest.mark.parametrize(("mode", "pattern"), [("error", "HTTP 500"), ("garbage", "malformed reply")])
def test_client_http_errors_are_one_line(chat_server: ThreadingHTTPServer, mode: str, pattern: str) -> None:
    chat_server.mode = mode
    client = wise.JudgeClient(_base(chat_server), "m", trust_env=False)
    with pytest.raises(wise.JudgeError, match=pattern) as info:
        client.judge([{"role": "user", "content": "hi"}], None)
    assert "\n" not in str(info.value)
    # In the retry loop an unreachable/erroring judge uses up attempts and is flagged, not crashed.
    outcome = wise.judge_prompt("verified", _prompt(1), None, client.judge)
    assert (
        outcome.status == wise.STATUS_JUDGE_ERROR
        and outcome.judge_calls == 3
        and outcome.score_record is None
    )


def test_client_timeout(chat_server: ThreadingHTTPServer) -> None:
    chat_server.mode = "slow"
    client = wise.JudgeClient(_base(chat_server), "m", timeout_s=0.2, connect_timeout_s=0.2, trust_env=False)
    with pytest.raises(wise.JudgeError, match="timed out"):
        client.judge([{"role": "user", "content": "hi"}], None)


def test_client_unreachable_port_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = wise.JudgeClient(
        f"http://127.0.0.1:{port}/v1", "m", timeout_s=2.0, connect_timeout_s=2.0, trust_env=False
    )
    with pytest.raises(
        wise.JudgeError, match=rf"judge http://127.0.0.1:{port}/v1/chat/completions unreachable"
    ) as info:
        client.judge([{"role": "user", "content": "hi"}], _png())
    assert "\n" not in str(info.value)


def test_client_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        wise.JudgeClient("127.0.0.1:8000", "m")
    monkeypatch.delenv("MMADA_TEST_MISSING_KEY", raising=False)
    client = wise.JudgeClient("http://127.0.0.1:9/v1", "m", "MMADA_TEST_MISSING_KEY")
    with pytest.raises(ConfigError, match="MMADA_TEST_MISSING_KEY"):
        client.judge([{"role": "user", "content": "hi"}], None)
    with pytest.raises(DataError, match="PNG"):
        client.request_payload([{"role": "user", "content": "hi"}], b"GIF89a")
