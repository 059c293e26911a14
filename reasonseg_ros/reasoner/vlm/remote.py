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

"""The ``remote`` backend's model: an OpenAI-compatible chat-completions server over HTTP.

httpx does the HTTP, through one client whose connection pool is reused by
every request (query mode sends one request per candidate point). The frame
travels as a data URL; the API key is read from the environment variable
named in config and goes only into the ``Authorization`` header (never into
names, errors or logs). 429, 5xx, timeouts and dropped connections are
retried with exponential backoff; a semaphore caps the requests in flight.

Bounds: a body is read as a stream and abandoned past
``remote.max_response_bytes``; every request, retry and backoff of a round
ends by the round's ``reasoner.deadline_s`` (see :meth:`RemoteVlm.begin_round`).
Where the server supports it the answer's JSON schema goes along as
``response_format`` (guided decoding). Query mode asks one question per
request with ``logprobs`` and fails clearly when the server returns none.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from reasonseg_ros.config import RemoteConfig, VlmConfig
from reasonseg_ros.deps import require
from reasonseg_ros.errors import ConfigError, ModelError, ModelOutputError
from reasonseg_ros.limits import QUOTE_CHARS, cap_text, quote
from reasonseg_ros.reasoner.vlm.client import QueryGroup
from reasonseg_ros.reasoner.vlm.coords import QWEN_PATCH_FACTOR, smart_resize
from reasonseg_ros.reasoner.vlm.dataurl import data_url, resize
from reasonseg_ros.reasoner.vlm.local import NO_WORDS, YES_WORDS
from reasonseg_ros.reasoner.vlm.prompt import PromptText
from reasonseg_ros.reasoner.vlm.schema import response_format

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 30.0
TOP_LOGPROBS = 10
ERROR_BODY_BYTES = 4096
"""Bytes of an error response read for its message."""


class RetryableError(Exception):
    """A failure worth another attempt (429, 5xx, timeout, dropped connection)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class HttpStatusError(ModelError):
    """The server refused the request with a 4xx status that another attempt would not change."""

    def __init__(self, message: str, status: int, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        """The server's own words (quoted, capped)."""


class RemoteVlm:
    def __init__(
        self,
        remote: RemoteConfig,
        vlm: VlmConfig,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parsed = urllib.parse.urlsplit(remote.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(
                f"reasoner.remote.url must be an http(s) URL such as http://host:8000/v1, got {quote(remote.url, 80)}"
            )
        self.remote = remote
        self.vlm = vlm
        self.endpoint = remote.url.rstrip("/") + "/chat/completions"
        host = parsed.hostname + (f":{parsed.port}" if parsed.port else "")  # no user:password in names
        self.name = f"remote {remote.model} at {parsed.scheme}://{host} (OpenAI chat completions)"
        self._slots = threading.BoundedSemaphore(remote.max_in_flight)
        self._sleep = sleep
        self._clock = clock
        self._deadline: tuple[float, float] | None = None
        """(clock time the round must end by, its length in s) while a round with a deadline runs."""
        self._schema = remote.structured_output != "off"
        self.requests_sent = 0
        self._api_key()  # a missing variable is a config error at start-up, not at the first round
        httpx = require("httpx", "the remote reasoner")
        self._httpx = httpx
        # one pool for the reasoner's life: query mode's ~20 requests per target reuse its connections
        self._client = httpx.Client(
            limits=httpx.Limits(max_connections=remote.max_in_flight, max_keepalive_connections=remote.max_in_flight)
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def begin_round(self, deadline_s: float | None) -> None:
        """Start a round's deadline: every request, retry and backoff until the next call ends by then."""
        self._deadline = None if deadline_s is None else (self._clock() + deadline_s, deadline_s)

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline[0] - self._clock()

    def _past_deadline(self, last: str) -> ModelError:
        seconds = self._deadline[1] if self._deadline else 0.0
        after = f" (last: {last})" if last else ""
        return ModelError(
            f"{self.name} gave no answer within the round's deadline of {seconds:g} s{after}; "
            "raise reasoner.deadline_s or lower reasoner.remote.timeout_s and retries"
        )

    def _api_key(self) -> str | None:
        name = self.remote.api_key_env
        if not name:
            return None
        key = os.environ.get(name)
        if not key:
            raise ConfigError(f"the environment variable {name} (reasoner.remote.api_key_env) is not set or empty")
        return key

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        return smart_resize(height, width, QWEN_PATCH_FACTOR, self.vlm.min_pixels, self.vlm.max_pixels)

    def _image(self, image: np.ndarray) -> str:
        if self.vlm.family != "absolute":
            # sent at the size a Qwen processor would pick, so its resize is the identity and
            # Qwen2.5-VL's pixel answers are in a frame we know
            image = resize(image, *self.model_size(*image.shape[:2]))
        return data_url(image, self.remote.image_format, self.remote.jpeg_quality)

    def _body(self, image_url: str, prompt: PromptText, *turns: dict[str, Any], **options: Any) -> dict[str, Any]:
        return {
            "model": self.remote.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": image_url}},
                        {"type": "text", "text": prompt.user},
                    ],
                },
                *turns,
            ],
            **options,
        }

    def generate(self, image: np.ndarray, prompt: PromptText) -> str:
        options: dict[str, Any] = {"max_tokens": self.vlm.max_new_tokens}
        options["temperature"] = self.vlm.temperature if self.vlm.do_sample else 0.0
        body = self._body(self._image(image), prompt, **options)
        if self._schema:
            try:
                response = self._post({**body, "response_format": response_format()})
            except HttpStatusError as exc:
                if not (exc.status == 400 and self.remote.structured_output == "auto" and _about_schema(exc.detail)):
                    raise
                # a server without guided decoding: free text and the tolerant parser from now on
                self._schema = False
                log.warning(
                    "%s refused response_format (%s); asking without the JSON schema from now on", self.name, exc
                )
                response = self._post(body)
        else:
            response = self._post(body)
        message = _choice(response).get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # some servers answer content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise ModelOutputError("the server's answer has no message content", cap_text(json.dumps(response)))
        return content

    def yes_probabilities(
        self, image: np.ndarray, prompt: PromptText, answer: str, groups: Sequence[QueryGroup]
    ) -> np.ndarray:
        image_url = self._image(image)
        options = {"max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": TOP_LOGPROBS}
        # one request per question, each the next turn after the answer; a server with prefix
        # caching (vLLM's default) reuses the shared image + answer prefix
        assistant = {"role": "assistant", "content": answer}
        bodies = [
            self._body(image_url, prompt, assistant, {"role": "user", "content": f"{g.context} {q}"}, **options)
            for g in groups
            for q in g.questions
        ]
        # the semaphore in _post caps what is in flight; the pool only has to be as wide
        with ThreadPoolExecutor(max_workers=self.remote.max_in_flight) as pool:
            responses = list(pool.map(self._post, bodies))
        return np.asarray([self._p_yes(r) for r in responses], dtype=np.float64)

    def _p_yes(self, response: dict[str, Any]) -> float:
        logprobs = _choice(response).get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not content or not isinstance(content[0], dict):
            raise ModelError(
                f"query mode is unavailable: {self.name} returned no logprobs; "
                "set reasoner.vlm.point_mode: direct, or use a server that returns them (vLLM does)"
            )
        first = content[0]
        # raw token -> logprob; the chosen token usually repeats among top_logprobs
        tokens: dict[str, float] = {}
        for entry in [*(first.get("top_logprobs") or []), first]:
            token, value = entry.get("token"), entry.get("logprob")
            if isinstance(token, str) and isinstance(value, int | float) and token not in tokens:
                tokens[token] = float(value)
        yes = _logsumexp([v for t, v in tokens.items() if t.strip() in YES_WORDS])
        no = _logsumexp([v for t, v in tokens.items() if t.strip() in NO_WORDS])
        if yes == -math.inf and no == -math.inf:
            return 0.5  # neither word among the likely tokens: no evidence either way
        return float(1.0 / (1.0 + math.exp(min(no - yes, 700.0))))

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries, within the round's deadline; returns the decoded JSON response."""
        data = json.dumps(body).encode("utf-8")
        attempts = self.remote.retries + 1
        last = ""
        for attempt in range(attempts):
            remaining = self._remaining()
            if remaining is not None and remaining <= 0:
                raise self._past_deadline(last)
            try:
                with self._slots:
                    return self._post_once(data)
            except RetryableError as exc:
                last = str(exc)
                if attempt + 1 == attempts:
                    break
                delay = self.remote.backoff_s * 2**attempt
                if exc.retry_after_s is not None:
                    delay = max(delay, min(exc.retry_after_s, MAX_RETRY_AFTER_S))
                remaining = self._remaining()
                if remaining is not None and delay >= remaining:
                    raise self._past_deadline(last) from None
                log.warning("%s: %s; retry %d/%d in %.2f s", self.name, last, attempt + 1, attempts - 1, delay)
                self._sleep(delay)
        raise ModelError(
            f"{self.name} failed after {attempts} attempt(s): {last}; "
            "check the server, reasoner.remote.url and reasoner.remote.timeout_s"
        )

    def _post_once(self, data: bytes) -> dict[str, Any]:
        httpx = self._httpx
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # the request's own limit, cut short by the round's deadline
        limit_s = self.remote.timeout_s
        remaining = self._remaining()
        if remaining is not None and remaining < limit_s:
            limit_s = max(remaining, 1e-3)
        ends = self._clock() + limit_s
        self.requests_sent += 1
        try:
            with self._client.stream(
                "POST", self.endpoint, content=data, headers=headers, timeout=httpx.Timeout(limit_s)
            ) as response:
                if response.status_code >= 400:
                    detail = _short(_read_capped(response, ERROR_BODY_BYTES, ends, self._clock)[0])
                    if response.status_code == 429 or response.status_code >= 500:
                        raise RetryableError(f"HTTP {response.status_code} {detail}", _retry_after(response.headers))
                    raise HttpStatusError(
                        f"{self.name} answered HTTP {response.status_code}: {detail}", response.status_code, detail
                    )
                payload = self._body_within_limit(response, ends)
        except httpx.TimeoutException:
            raise RetryableError(f"no answer within {limit_s:g} s") from None
        except httpx.ConnectError as exc:
            raise RetryableError(f"cannot reach the server: {_first_line(exc)}") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError) as exc:
            raise RetryableError(f"connection dropped: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise ModelError(f"{self.name}: {type(exc).__name__}: {_first_line(exc)}") from None
        try:
            decoded = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise ModelOutputError(
                f"{self.name} answered with a body that is not JSON: {_short(payload)}",
                cap_text(payload.decode("utf-8", "replace")),
            ) from None
        if not isinstance(decoded, dict):
            raise ModelOutputError(f"{self.name} answered JSON that is not an object", _short(payload))
        return decoded

    def _body_within_limit(self, response: Any, ends: float) -> bytes:
        """The body, read as a stream; past ``max_response_bytes`` reading stops and nothing is kept."""
        limit = self.remote.max_response_bytes
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise self._too_long(f"{int(declared)} bytes announced")
        payload, complete = _read_capped(response, limit, ends, self._clock)
        if not complete:
            raise self._too_long(f"more than {limit} bytes sent")
        return payload

    def _too_long(self, what: str) -> ModelOutputError:
        limit = self.remote.max_response_bytes
        return ModelOutputError(
            f"{self.name} answered a body over reasoner.remote.max_response_bytes ({limit} bytes; {what}); "
            "it was not read further nor kept"
        )


def _read_capped(response: Any, limit: int, ends: float, clock: Callable[[], float]) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body and whether that was all of it; a timeout past ``ends``."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: len(chunk) - (size - limit)])
            return b"".join(chunks), False
        chunks.append(chunk)
        if clock() > ends:  # a server trickling bytes must not outlast the request's limit
            raise RetryableError("the answer did not finish within the request's time limit")
    return b"".join(chunks), True


def _about_schema(message: str) -> bool:
    """Whether a 400's message is about the structured-output request (not some other fault of the request)."""
    lowered = message.lower()
    return any(word in lowered for word in ("response_format", "json_schema", "schema", "guided", "structured"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:QUOTE_CHARS]


def _choice(response: dict[str, Any]) -> dict[str, Any]:
    choices = response.get("choices")
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
        raise ModelOutputError("the server's answer has no choices", cap_text(json.dumps(response)))
    return choices[0]


def _logsumexp(values: list[float]) -> float:
    if not values:
        return -math.inf
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _short(payload: bytes) -> str:
    return quote(payload[: 4 * QUOTE_CHARS].decode("utf-8", "replace"))
