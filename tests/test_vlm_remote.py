# Copyright 2026 reasonseg_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""The ``remote`` reasoner against a real HTTP server on 127.0.0.1 that answers from a script.

Every scripted fault (malformed answers, 500s, 429, a hang past the timeout,
a dropped connection, missing logprobs) must end in a result or a clear
error, never a crash, and the API key must never show in logs or results.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pytest
from helpers import frame, loopback_server, scene
from vlm_helpers import memory_of

from reasonseg_ros.config import RemoteConfig, VlmConfig, load_config
from reasonseg_ros.errors import ConfigError, ModelError, ModelOutputError
from reasonseg_ros.reasoner import create_reasoner
from reasonseg_ros.reasoner.vlm import VlmReasoner
from reasonseg_ros.reasoner.vlm.remote import RemoteVlm
from reasonseg_ros.types import Instruction

KEY = "sk-test-d0-not-leak-7f3a"
KEY_ENV = "REASONSEG_TEST_VLM_KEY"
HANG_S = 3.0
"""A hanging reply waits this long at most (the server is released at teardown)."""

Action = Callable[[dict[str, Any]], tuple]


@dataclass
class Script:
    """What the server answers, request by request; the last action repeats."""

    actions: list[Action] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def next(self, request: dict[str, Any]) -> tuple:
        with self.lock:
            self.requests.append(request)
            index = min(len(self.requests) - 1, len(self.actions) - 1)
        return self.actions[index](request["body"])


def chat(content: str, logprobs: Any = None) -> Action:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return lambda _: ("json", 200, {"id": "x", "object": "chat.completion", "choices": [choice]})


def status(code: int, headers: dict[str, str] | None = None) -> Action:
    return lambda _: ("json", code, {"error": {"message": f"scripted {code}"}}, headers or {})


def hang() -> Action:
    return lambda _: ("hang",)


def drop() -> Action:
    return lambda _: ("drop",)


def raw_body(payload: bytes) -> Action:
    return lambda _: ("raw", 200, payload)


class Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        script = self.server.script  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        with script.lock:
            script.in_flight += 1
            script.most_in_flight = max(script.most_in_flight, script.in_flight)
        try:
            action = script.next({"path": self.path, "headers": dict(self.headers), "body": body})
            if body.get("logprobs"):
                time.sleep(0.02)  # lets concurrent queries overlap, so the in-flight cap is observable
            self._act(action, script)
        finally:
            with script.lock:
                script.in_flight -= 1

    def _act(self, action: tuple, script: Script) -> None:
        kind = action[0]
        if kind == "hang":
            script.release.wait(HANG_S)
            return
        if kind == "drop":
            self.close_connection = True
            return  # no status line: the client sees the connection closed
        if kind == "raw":
            payload, code, headers = action[2], action[1], {}
        else:
            payload, code = json.dumps(action[2]).encode(), action[1]
            headers = action[3] if len(action) > 3 else {}
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    with loopback_server(Handler, script=script) as url:
        try:
            yield f"{url}/v1", script
        finally:
            script.release.set()  # before the server stops: a handler may be waiting on it


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # the loopback server must be reached directly
    return KEY


def make(url: str, sleeps: list[float] | None = None, vlm: VlmConfig | None = None, **remote: Any) -> VlmReasoner:
    settings = {"url": url, "model": "test-vlm", "api_key_env": KEY_ENV, "timeout_s": 2.0, "image_format": "png"}
    config = RemoteConfig(**{**settings, **remote})
    vlm = vlm or VlmConfig(family="qwen3_vl")
    sleep = sleeps.append if sleeps is not None else (lambda _: None)
    return VlmReasoner(RemoteVlm(config, vlm, sleep=sleep), vlm)


GOOD = json.dumps(
    {
        "targets": [{"label": "mug", "box": [100, 100, 500, 600], "points": [[300, 350]], "confidence": 0.9}],
        "rejections": [{"phrase": "the fork", "reason": "none on the table"}],
        "reply": "The mug.",
    }
)
IMAGE = scene(120, 160)


def test_good_answer_and_the_request_it_came_from(server, api_key):
    url, script = server
    script.actions = [chat(f"```json\n{GOOD}\n```")]
    out = make(url).reason(IMAGE, "the mug and the fork", memory_of())
    np.testing.assert_allclose(out.targets[0].prompt.box, [16, 12, 80, 72])  # 0-1000 of a 160×120 image
    assert [r.phrase for r in out.rejections] == ["the fork"] and out.reply == "The mug."
    (request,) = script.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "test-vlm" and body["temperature"] == 0.0 and body["max_tokens"] == 512
    system, user = body["messages"]
    assert system["role"] == "system" and "0 to 1000" in system["content"]
    image_part, text_part = user["content"]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    assert text_part["text"].endswith("Instruction: the mug and the fork")


def test_qwen25_frames_are_sent_at_the_processor_size_so_pixel_answers_map_back(server, api_key):
    import base64
    import struct

    url, script = server
    script.actions = [chat('[{"bbox_2d": [0, 0, 84, 56], "label": "mug"}]')]
    reasoner = make(url, vlm=VlmConfig(family="qwen2_5_vl"))
    out = reasoner.reason(IMAGE, "the mug", memory_of())
    png = base64.b64decode(script.requests[0]["body"]["messages"][1]["content"][0]["image_url"]["url"].split(",")[1])
    width, height = struct.unpack(">II", png[16:24])
    assert (height, width) == reasoner.client.model_size(120, 160) == (112, 168)
    np.testing.assert_allclose(out.targets[0].prompt.box, [0, 0, 80, 60])


def test_malformed_answer_is_an_unreadable_output_error_without_retry(server, api_key):
    url, script = server
    script.actions = [chat("I think the mug is on the left.")]
    with pytest.raises(ModelOutputError) as caught:
        make(url).reason(IMAGE, "the mug", memory_of())
    assert caught.value.raw_output == "I think the mug is on the left."
    assert len(script.requests) == 1


def test_a_body_that_is_not_json_is_an_unreadable_output_error(server, api_key):
    url, script = server
    script.actions = [raw_body(b"<html>proxy error</html>")]
    with pytest.raises(ModelOutputError, match="not JSON"):
        make(url).reason(IMAGE, "the mug", memory_of())


def test_500s_then_success_retries_with_growing_backoff(server, api_key):
    url, script = server
    script.actions = [status(500), status(503), chat(GOOD)]
    sleeps: list[float] = []
    out = make(url, sleeps, retries=3, backoff_s=0.25).reason(IMAGE, "the mug", memory_of())
    assert out.reply == "The mug." and len(script.requests) == 3
    assert sleeps == [0.25, 0.5]


def test_429_honours_retry_after(server, api_key):
    url, script = server
    script.actions = [status(429, {"Retry-After": "2"}), chat(GOOD)]
    sleeps: list[float] = []
    assert make(url, sleeps, backoff_s=0.1).reason(IMAGE, "the mug", memory_of()).targets
    assert sleeps == [2.0]


def test_500s_forever_give_a_clear_model_error_after_the_retries(server, api_key):
    url, script = server
    script.actions = [status(500)]
    with pytest.raises(ModelError, match=r"failed after 3 attempt\(s\): HTTP 500"):
        make(url, [], retries=2).reason(IMAGE, "the mug", memory_of())
    assert len(script.requests) == 3


def test_a_400_is_not_retried(server, api_key):
    url, script = server
    script.actions = [status(400)]
    with pytest.raises(ModelError, match="HTTP 400"):
        make(url, [], retries=3).reason(IMAGE, "the mug", memory_of())
    assert len(script.requests) == 1


def test_a_hang_past_the_timeout_is_retried_then_reported(server, api_key):
    url, script = server
    script.actions = [hang(), chat(GOOD)]
    start = time.perf_counter()
    assert make(url, [], timeout_s=0.3, retries=1).reason(IMAGE, "the mug", memory_of()).targets
    assert time.perf_counter() - start < 2.0
    script.actions, script.requests = [hang()], []
    with pytest.raises(ModelError, match=r"no answer within 0\.3 s"):
        make(url, [], timeout_s=0.3, retries=1).reason(IMAGE, "the mug", memory_of())
    assert len(script.requests) == 2


def test_a_dropped_connection_is_retried(server, api_key):
    url, script = server
    script.actions = [drop(), chat(GOOD)]
    sleeps: list[float] = []
    assert make(url, sleeps).reason(IMAGE, "the mug", memory_of()).reply == "The mug."
    assert len(script.requests) == 2 and len(sleeps) == 1


def test_an_unreachable_server_is_a_model_error(api_key):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ModelError, match="cannot reach the server"):
        make(f"http://127.0.0.1:{port}/v1", [], retries=1).reason(IMAGE, "the mug", memory_of())


def logprob_answer(body: dict[str, Any]) -> tuple:
    """Yes for points in the left half of the 0-1000 frame, No elsewhere."""
    assistant, turn = body["messages"][2:]
    assert assistant == {"role": "assistant", "content": '{"targets": [{"label": "mug", "box": [200, 200, 800, 800]}]}'}
    assert "Answer Yes or No: is this point on the mug?" in turn["content"] and turn["role"] == "user"
    question = turn["content"].rsplit("[", 1)[1]
    x = float(question.split(",")[0])
    yes, no = (-0.1, -2.5) if x < 500 else (-3.0, -0.05)
    top = [{"token": "Yes", "logprob": yes}, {"token": "No", "logprob": no}, {"token": " yes", "logprob": -6.0}]
    chosen = top[0] if yes > no else top[1]
    return chat(chosen["token"], {"content": [{**chosen, "top_logprobs": top}]})(body)


def test_query_mode_uses_server_logprobs_within_the_in_flight_cap(server, api_key):
    url, script = server
    answer = '{"targets": [{"label": "mug", "box": [200, 200, 800, 800]}]}'
    script.actions = [chat(answer), logprob_answer]
    vlm = VlmConfig(family="qwen3_vl", point_mode="query", query_candidates=10, query_max_points=3)
    out = make(url, vlm=vlm, max_in_flight=2).reason(IMAGE, "the mug", memory_of())
    target = out.targets[0]
    from reasonseg_ros.reasoner.vlm.query import candidate_points

    asked = len(candidate_points(target.prompt.box, 10, vlm.query_margin, (120, 160)))
    assert asked > 6 and len(script.requests) == 1 + asked
    assert all(r["body"]["logprobs"] is True and r["body"]["max_tokens"] == 1 for r in script.requests[1:])
    assert script.most_in_flight == 2
    labels = target.prompt.point_labels.tolist()
    assert labels.count(1) == 3 and labels.count(0) == 3
    xs = target.prompt.points[:, 0]
    assert (xs[np.array(labels) == 1] < 80).all() and (xs[np.array(labels) == 0] >= 80).all()


def test_query_mode_without_logprobs_says_it_is_unavailable(server, api_key):
    url, script = server
    script.actions = [chat('{"targets": [{"label": "mug", "box": [200, 200, 800, 800]}]}'), chat("Yes")]
    vlm = VlmConfig(family="qwen3_vl", point_mode="query", query_candidates=4)
    with pytest.raises(ModelError, match=r"query mode is unavailable.*point_mode: direct"):
        make(url, vlm=vlm).reason(IMAGE, "the mug", memory_of())


def test_the_api_key_never_reaches_logs_results_or_errors(server, api_key, make_engine, caplog):
    pytest.importorskip("torch", reason="the torch extra is not installed")
    from reasonseg_ros.messages.result_json import round_to_json

    url, script = server
    script.actions = [status(500), chat(GOOD), status(500), drop(), chat("not json at all"), status(401)]
    caplog.set_level(logging.DEBUG)
    config = load_config(
        None,
        {
            "reasoner.backend": "remote",
            "reasoner.remote.url": url,
            "reasoner.remote.api_key_env": KEY_ENV,
            "reasoner.remote.backoff_s": 0.0,
            "reasoner.remote.retries": 1,
            "reasoner.remote.image_format": "png",
            "reasoner.vlm.family": "qwen3_vl",
            "reasoner.vlm.keep_prompt": True,
        },
    )
    reasoner = create_reasoner(config.reasoner)
    engine = make_engine(reasoner=reasoner)
    engine.submit_frame(frame())
    results = [engine.handle(Instruction(text)) for text in ("the mug", "the mug", "the mug", "the mug")]
    assert [r.ok for r in results] == [True, False, False, False]
    assert [r.error_kind for r in results[1:]] == ["model_failure", "unreadable_output", "model_failure"]
    seen = caplog.text + reasoner.name + "".join(round_to_json(r) + repr(r) for r in results)
    assert "retry" in caplog.text and KEY not in seen
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in script.requests)


def test_a_missing_key_variable_is_a_config_error_at_start(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=KEY_ENV):
        RemoteVlm(RemoteConfig(api_key_env=KEY_ENV), VlmConfig())
    with pytest.raises(ConfigError, match="http"):
        RemoteVlm(RemoteConfig(url="ftp://host/v1"), VlmConfig())


def test_a_slow_server_blocks_the_round_but_never_submit_frame(server, api_key, make_engine):
    pytest.importorskip("torch", reason="the torch extra is not installed")
    url, script = server
    script.actions = [hang()]
    engine = make_engine(reasoner=make(url, [], timeout_s=1.0, retries=0))
    engine.submit_frame(frame(stamp_ns=1))
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(engine.handle(Instruction("the mug"))))
    worker.start()
    while not script.requests:
        time.sleep(0.01)
    start = time.perf_counter()
    for stamp in range(2, 52):
        engine.submit_frame(frame(stamp_ns=stamp))
    assert time.perf_counter() - start < 0.5 and worker.is_alive()
    worker.join(5)
    assert results[0].error_kind == "model_failure" and engine.frames_received == 51
