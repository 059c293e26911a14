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

"""What a misbehaving server can cost a round (issue 15).

A 10 MB body, a server slower than the timeout, connection reuse, and the answer's JSON schema sent as
``response_format``. A keep-alive HTTP/1.1 server on 127.0.0.1; timeouts scaled down to fractions of a second.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from helpers import loopback_server, scene
from vlm_helpers import memory_of

from reasonseg_ros.config import ReasonerConfig, RemoteConfig, VlmConfig
from reasonseg_ros.errors import ModelError, ModelOutputError
from reasonseg_ros.reasoner.vlm import VlmReasoner
from reasonseg_ros.reasoner.vlm.remote import RemoteVlm
from reasonseg_ros.reasoner.vlm.schema import ANSWER_JSON_SCHEMA

pytest.importorskip("httpx", reason="the remote extra (httpx) is not installed")

IMAGE = scene(60, 80)
GOOD = json.dumps({"targets": [{"label": "mug", "box": [100, 100, 500, 600]}], "rejections": [], "reply": "ok"})
TEN_MB = 10 * 1024 * 1024


def completion(content: str) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    return json.dumps({"choices": [choice]}).encode()


class Server:
    """Answers every POST with ``self.answer(handler, body)``; records bodies and client ports."""

    def __init__(self) -> None:
        self.answer: Callable[[BaseHTTPRequestHandler, dict[str, Any]], None] = self.ok
        self.bodies: list[dict[str, Any]] = []
        self.ports: set[int] = set()
        self.release = threading.Event()

    @staticmethod
    def ok(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        send(handler, 200, completion(GOOD))


def send(handler: BaseHTTPRequestHandler, code: int, payload: bytes) -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that connection reuse is visible

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        server: Server = self.server.state  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.bodies.append(body)
        server.ports.add(self.client_address[1])
        try:
            server.answer(self, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading: what a bounded client does


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Server]]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    state = Server()
    with loopback_server(Handler, state=state) as url:
        try:
            yield f"{url}/v1", state
        finally:
            state.release.set()  # before the server stops: a handler may be waiting on it


def reasoner(url: str, deadline_s: float | None = 60.0, **remote: Any) -> VlmReasoner:
    settings = {"url": url, "model": "m", "timeout_s": 2.0, "image_format": "png", "retries": 0, **remote}
    vlm = VlmConfig(family="qwen3_vl")
    return VlmReasoner(RemoteVlm(RemoteConfig(**settings), vlm), vlm, deadline_s)


def test_a_10_mb_body_with_its_length_is_refused_unread_and_not_kept(server):
    url, state = server
    state.answer = lambda h, _: send(h, 200, completion("x" * TEN_MB))
    with pytest.raises(ModelOutputError) as caught:
        reasoner(url).reason(IMAGE, "the mug", memory_of())
    message = str(caught.value)
    assert "reasoner.remote.max_response_bytes (1048576 bytes" in message and len(message) < 400
    assert caught.value.raw_output is None and caught.value.kind == "unreadable_output"


def test_a_10_mb_streamed_body_is_cut_at_the_limit(server):
    url, state = server
    sent: list[int] = []

    def stream(handler: BaseHTTPRequestHandler, _: dict[str, Any]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"x" * 65536
        for _ in range(TEN_MB // len(chunk)):
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent.append(len(chunk))
        handler.wfile.write(b"0\r\n\r\n")

    state.answer = stream
    with pytest.raises(ModelOutputError, match=r"more than 1000 bytes sent") as caught:
        reasoner(url, max_response_bytes=1000).reason(IMAGE, "the mug", memory_of())
    assert caught.value.raw_output is None


def test_a_server_slower_than_the_timeout_ends_at_the_rounds_deadline(server):
    url, state = server
    state.answer = lambda h, _: state.release.wait(1.0)  # answers nothing within any timeout here
    deadline = 0.8
    slow = reasoner(url, deadline_s=deadline, timeout_s=0.3, retries=10, backoff_s=0.05)
    start = time.perf_counter()
    with pytest.raises(ModelError, match=r"deadline of 0\.8 s.*reasoner\.deadline_s"):
        slow.reason(IMAGE, "the mug", memory_of())
    elapsed = time.perf_counter() - start
    assert abs(elapsed - deadline) <= 0.1 * deadline, elapsed
    assert 2 <= len(state.bodies) <= 3  # attempts of 0.3 s until the deadline, not all 11


def test_requests_reuse_one_connection(server):
    url, state = server
    model = reasoner(url)
    for _ in range(4):
        assert model.reason(IMAGE, "the mug", memory_of()).targets
    assert len(state.bodies) == 4 and len(state.ports) == 1


def test_the_answer_schema_goes_as_response_format_and_is_dropped_when_refused(server):
    url, state = server
    model = reasoner(url)
    model.reason(IMAGE, "the mug", memory_of())
    sent = state.bodies[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == ANSWER_JSON_SCHEMA
    assert set(ANSWER_JSON_SCHEMA["required"]) == {"targets", "rejections", "reply"}

    def no_guided(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if "response_format" in body:
            send(handler, 400, b'{"error": {"message": "response_format json_schema is not supported"}}')
        else:
            Server.ok(handler, body)

    state.answer = no_guided
    fresh = reasoner(url)
    for _ in range(2):
        assert fresh.reason(IMAGE, "the mug", memory_of()).targets
    assert ["response_format" in b for b in state.bodies[1:]] == [True, False, False]  # asked once, then not
    state.bodies.clear()
    reasoner(url, structured_output="off").reason(IMAGE, "the mug", memory_of())
    assert "response_format" not in state.bodies[0]
    state.bodies.clear()
    with pytest.raises(ModelError, match="HTTP 400"):
        reasoner(url, structured_output="json_schema").reason(IMAGE, "the mug", memory_of())


def test_the_factory_hands_the_deadline_to_the_reasoner():
    from reasonseg_ros.reasoner.vlm import create_remote

    made = create_remote(ReasonerConfig(backend="remote", deadline_s=7.5))
    assert made.deadline_s == 7.5 and ReasonerConfig().deadline_s == 60.0
    assert RemoteConfig().max_response_bytes == 1 << 20
