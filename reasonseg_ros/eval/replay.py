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

"""Drive the engine from a bag exactly as the ROS node does, and score it.

The node's own behaviour class (:class:`~reasonseg_ros.ros.node_core.NodeCore`,
rclpy-free) receives the bag's images and instructions, with publish
callables that write its outputs into an MCAP bag on the input's timeline.

- ``deterministic``: every frame up to an instruction's time is submitted
  before the instruction runs, so results do not depend on machine speed.
- ``realtime``: messages arrive at their recorded pace (times ``rate``)
  while a worker thread runs the models, as on a robot; the report gives
  the age of the frame each round used.

With ``tracking.backend`` set, the tracker runs too: on every frame in
deterministic mode, at ``tracking.rate_hz`` on the newest frame in real-time
mode; per-frame ground truth scores it (:mod:`reasonseg_ros.eval.track_eval`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from reasonseg_ros.config import Config
from reasonseg_ros.deps import require
from reasonseg_ros.engine import Engine
from reasonseg_ros.errors import InputError
from reasonseg_ros.eval.bag_io import RESET_TOPIC, BagWriter, open_bag
from reasonseg_ros.eval.ground_truth import (
    FILE_NAME,
    FrameTruth,
    GroundTruth,
    index_frames,
    match,
    parse_any,
    read_ground_truth,
)
from reasonseg_ros.eval.metrics import Sample, percentiles, summarize
from reasonseg_ros.eval.track_eval import StepRecorder, export_davis, link_rounds, score_tracking, tracking_enabled
from reasonseg_ros.messages import parse_instruction
from reasonseg_ros.messages.result_json import readable_envelope_id
from reasonseg_ros.reasoner.oracle import OracleReasoner
from reasonseg_ros.ros.node_core import NodeCore, Outputs

MODEL_STAGES = ("reason", "embed", "decode")
OUTPUT_TOPICS = {
    "masks": ("/masks", "sensor_msgs/msg/Image"),
    "detections": ("/detections", "vision_msgs/msg/Detection2DArray"),
    "result": ("/result", "std_msgs/msg/String"),
    "rejection": ("/rejection", "std_msgs/msg/String"),
    "tracks_masks": ("/tracks/masks", "sensor_msgs/msg/Image"),
    "tracks_detections": ("/tracks/detections", "vision_msgs/msg/Detection2DArray"),
    "overlay": ("/overlay", "sensor_msgs/msg/Image"),
}
OVERLAY_DIR = "overlays"
MAX_OVERLAY_FILES = 20
"""The first rounds' overlays are also PNG files beside the report (all of them are in the output bag)."""
COLOR_MASKS_TOPIC = "/masks_color"
"""The label image in each object's overlay colour (rgb8), so that a bag viewer shows the masks at once."""


@dataclass
class ReplayOptions:
    mode: Literal["deterministic", "realtime"] = "deterministic"
    image_topic: str | None = None
    """None: ``replay.image_topic`` of the config."""
    instruction_topic: str | None = None
    ground_truth: Path | None = None
    """None: ``ground_truth.jsonl`` in the bag folder, else the config's ground-truth topic."""
    rate: float = 1.0
    """Playback speed in real-time mode."""
    progress: bool = True
    export_masks: Path | None = None
    """With tracking on: write the tracked masks there as DAVIS result PNGs (bags from ``convert davis``)."""
    protocol: Literal["free", "reference", "both"] = "free"
    """free: the model answers freely, as on the robot; reference: each instruction is posed and its
    ground-truth answer teacher-forced as the model's published evaluation did (``seg_token`` only,
    docs/seg_token.md); both: free, then reference with the same loaded models (its figures under
    ``metrics["reference"]``, its output bag in ``reference/``)."""
    config_path: str | None = None
    """The config file, for the report's provenance."""
    command: str | None = None
    """The command line, for the report's provenance."""


@dataclass
class ReplayRun:
    """Everything a replay produced, before it is written out."""

    metrics: dict[str, Any]
    run: dict[str, Any]
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Parsed result JSON per instruction index."""
    samples: list[Sample] = field(default_factory=list)
    models: tuple[Any, Any] | None = None
    """The ``(segmenter, reasoner)`` the run loaded, for a second run on the same models."""
    sample_indices: list[int] = field(default_factory=list)
    """Instruction index (key of ``results``) of each sample."""


def replay(
    bag: str | Path,
    config: Config,
    out_dir: str | Path,
    options: ReplayOptions | None = None,
    models: tuple[Any, Any] | None = None,
) -> ReplayRun:
    """Replay ``bag`` through the engine; writes the output bag into ``out_dir`` and returns the figures.

    ``models``: an already loaded ``(segmenter, reasoner)`` to build the engine from (``both`` reuses them).
    """
    options = options or ReplayOptions()
    bag, out_dir = Path(bag), Path(out_dir)
    if options.protocol != "free" and config.reasoner.backend != "seg_token":
        raise ValueError(
            f"--protocol {options.protocol} needs a seg_token reasoner (LISA, GSVA, READ), "
            f"not reasoner.backend {config.reasoner.backend}"
        )
    if options.protocol == "both":
        free = replay(bag, config, out_dir, replace(options, protocol="free"), models)
        reference = replay(bag, config, out_dir / "reference", replace(options, protocol="reference"), free.models)
        free.metrics["reference"] = reference.metrics
        free.run["protocol"] = "both"
        return free
    image_topic = options.image_topic or config.replay.image_topic
    instruction_topic = options.instruction_topic or config.replay.instruction_topic
    if image_topic == instruction_topic:
        raise ValueError(f"the image and instruction topics must differ (both are '{image_topic}')")
    reader = open_bag(bag)
    try:
        connections = _connections(
            reader, {image_topic: "sensor_msgs/msg/Image", instruction_topic: "std_msgs/msg/String"}
        )
        instructions, ids = _instruction_keys(reader, connections[instruction_topic], config.node.default_session)
        records, frame_truth, truth_source = _ground_truth(
            reader, bag, options.ground_truth, config.replay.ground_truth_topic
        )
        index_frames(frame_truth)  # a frame given twice stops the run now, not after playing the bag
        matching = match(instructions, records) if records is not None else None
        if options.progress:
            require("tqdm", "the replay progress bar (or --quiet)")  # before anything is written
        resets = [c for c in reader.connections if c.topic == RESET_TOPIC and c.msgtype == "std_msgs/msg/String"]
        engine = Engine.from_config(config) if models is None else Engine(*models, config)
        loaded = (engine.segmenter, engine.reasoner)
        if isinstance(engine.reasoner, OracleReasoner):
            for index, record in matching.pairs if matching else []:
                engine.reasoner.expect(*instructions[index], record.objects)
        scored = _reference_protocol(engine, instructions, matching) if options.protocol == "reference" else None
        out_dir.mkdir(parents=True, exist_ok=True)
        clock: list[Callable[[], int]] = []
        recorder = None
        if tracking_enabled(engine, config.tracking.backend):
            # Installed before the node core exists, so whatever it keeps of track_newest is the recorder.
            recorder = StepRecorder(engine, lambda: clock[0]())
        with BagWriter(out_dir / "output_bag") as writer:
            player = _Player(engine, writer, config, ids, progress=options.progress)
            player.overlay_dir = out_dir / OVERLAY_DIR
            for stale in player.overlay_dir.glob("round_*.png"):  # an earlier run's pictures (--force)
                stale.unlink()
            clock.append(player.clock)
            if recorder is not None:
                player.enable_tracking()
            started = time.perf_counter()
            if options.mode == "realtime":
                player.play_realtime(reader, [*connections.values(), *resets], options.rate)
            else:
                player.play_deterministic(reader, [*connections.values(), *resets])
            wall_s = time.perf_counter() - started
            player.close()
    finally:
        reader.close()

    samples = []
    rejected: list[tuple[bool, bool]] = []
    for index, record in matching.pairs if matching else []:
        if scored is not None and index not in scored:
            continue  # left out by the reference evaluation (ReasonSeg texts after an image's first)
        result = player.results.get(index)
        ok = bool(result and result["ok"])
        predicted = [o["mask"] for o in result["objects"]] if ok else []
        samples.append(Sample(predicted, record.masks, record.round, result["timings_ms"] if ok else {}, record.ignore))
        rejected.append((bool(record.objects), bool(ok and result["rejections"])))
    metrics = summarize(samples)
    metrics["protocol"] = options.protocol
    if scored is not None and getattr(engine.reasoner, "rej_id", None) is not None:
        # GSVA's eval_gres: N-acc / T-acc from the predicted marker, masks scored regardless
        without = [r for present, r in rejected if not present]
        with_target = [not r for present, r in rejected if present]
        metrics["N-acc"] = sum(without) / len(without) if without else None
        metrics["T-acc"] = sum(with_target) / len(with_target) if with_target else None
    tracking_problems: list[str] = []
    if recorder is not None:
        records_by_index = dict(matching.pairs) if matching else {}
        rounds = [(result, records_by_index.get(index)) for index, result in sorted(player.results.items())]
        metrics["tracking"], tracking_problems = score_tracking(recorder.steps, frame_truth, rounds, options.mode)
        metrics["tracking"]["backend"] = config.tracking.backend
        sam2 = getattr(config.tracking, "sam2", None)
        metrics["tracking"]["random_weights"] = config.tracking.backend == "sam2" and bool(
            getattr(sam2, "random_weights", False)
        )
        if options.export_masks is not None:
            links = link_rounds(frame_truth, rounds)
            metrics["tracking"]["exported_pngs"] = export_davis(recorder.steps, rounds, links, options.export_masks)
    run = _run_info(
        bag, config, options, engine, player, matching, truth_source, wall_s, image_topic, instruction_topic
    )
    run["mismatches"] += [f"tracking: {p}" for p in tracking_problems]
    run["overlays"] = player.overlay_files
    sample_indices = [index for index, _ in matching.pairs] if matching else []
    return ReplayRun(metrics, run, player.results, samples, loaded, sample_indices)


def _reference_protocol(engine: Engine, instructions: list[tuple[str, str]], matching: Any) -> set[int]:
    """Wrap the seg_token reasoner so that each instruction is answered as its reference evaluation does.

    Returns the instruction indices the reference scores.
    """
    from reasonseg_ros.reasoner.seg_token.reasoner import SegTokenReasoner
    from reasonseg_ros.reasoner.seg_token.reference import ReferenceProtocol, reference_round

    inner = engine.reasoner
    if not isinstance(inner, SegTokenReasoner):
        raise ValueError(f"--protocol reference needs a seg_token reasoner (LISA, GSVA, READ), not {inner.name}")
    if matching is None:
        raise ValueError("--protocol reference needs ground truth: it teacher-forces the ground-truth answers")
    wrapper = ReferenceProtocol(inner)
    scored = set()
    for index, record in matching.pairs:
        info = record.extra.get("reference", {})
        sample = reference_round(
            inner.layout.name,
            record.text,
            bool(record.objects),
            referring=info.get("dataset", "refcoco") != "reasonseg",
            is_sentence=bool(info.get("is_sentence", False)),
            first=bool(info.get("first", True)),
            group=tuple(zip(info.get("group", []), info.get("present", []), strict=False)),
            position=int(info.get("position", 0)),
        )
        wrapper.expect(*instructions[index], sample)
        if sample.scored:
            scored.add(index)
    engine.reasoner = wrapper
    return scored


def _connections(reader: Any, wanted: dict[str, str]) -> dict[str, Any]:
    found = {c.topic: c for c in reader.connections}
    available = ", ".join(f"{c.topic} ({c.msgtype})" for c in reader.connections) or "none"
    chosen = {}
    for topic, msgtype in wanted.items():
        connection = found.get(topic)
        if connection is None:
            raise ValueError(f"the bag has no topic '{topic}' (topics: {available}); name another with the options")
        if connection.msgtype != msgtype:
            raise ValueError(f"topic '{topic}' carries {connection.msgtype}, expected {msgtype}")
        chosen[topic] = connection
    return chosen


def _instruction_keys(reader: Any, connection: Any, default_session: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``(session, text)`` of each instruction in bag order (ground truth is matched by it), and its id.

    The id is the envelope's own, else ``replay-<index>``: results are paired with instructions by it,
    never by text (identical texts in flight, and drops, would shift a pairing by text order).
    """
    keys, ids = [], []
    for index, (conn, _, raw) in enumerate(reader.messages(connections=[connection])):
        text = reader.deserialize(raw, conn.msgtype).data
        try:
            instruction = parse_instruction(text, default_session)
            keys.append((instruction.session, instruction.text))
            ids.append(instruction.id or f"replay-{index}")
        except InputError:
            keys.append((default_session, text))
            ids.append(readable_envelope_id(text) or f"replay-{index}")
    return keys, ids


def _ground_truth(
    reader: Any, bag: Path, path: Path | None, topic: str
) -> tuple[list[GroundTruth] | None, list[FrameTruth], str]:
    """Instruction records (None when there are none at all), per-frame tracking records, and where they came from."""
    if path is not None:
        return *read_ground_truth(path), str(path)
    sidecar = bag / FILE_NAME if bag.is_dir() else bag.with_name(FILE_NAME)
    if sidecar.is_file():
        return *read_ground_truth(sidecar), str(sidecar)
    connections = [c for c in reader.connections if c.topic == topic]
    if connections:
        parsed = [
            parse_any(json.loads(reader.deserialize(raw, conn.msgtype).data), f"{topic} message {i}")
            for i, (conn, _, raw) in enumerate(reader.messages(connections=connections))
        ]
        records = [r for r in parsed if isinstance(r, GroundTruth)]
        return records, [r for r in parsed if isinstance(r, FrameTruth)], f"topic {topic}"
    return None, [], "none (nothing is scored)"


class _Player:
    """Feeds bag messages to a NodeCore and collects what it publishes."""

    def __init__(self, engine: Engine, writer: BagWriter, config: Config, ids: list[str], progress: bool) -> None:
        self.writer = writer
        self._write_lock = threading.Lock()
        self.total = len(ids)
        self._ids = ids
        self._delivered = 0
        self._bag_ns = 0
        self._realtime: tuple[int, float, float] | None = None
        """(bag start ns, wall start s, rate) while playing in real time."""
        self.results: dict[int, dict[str, Any]] = {}
        self.unmatched: list[str] = []
        self.frame_ages_ms: list[float] = []
        self.overlay_dir: Path | None = None
        """Where the first :data:`MAX_OVERLAY_FILES` overlays are also written as PNG (None: nowhere)."""
        self.overlay_files: list[str] = []
        self._indices: dict[str, deque[int]] = defaultdict(deque)
        for index, instruction_id in enumerate(ids):
            self._indices[instruction_id].append(index)
        self.duplicate_ids = sorted(i for i, where in self._indices.items() if len(where) > 1)
        outputs = Outputs(**{name: self._publisher(name) for name in OUTPUT_TOPICS}, overlay_wanted=lambda: True)
        self.core = NodeCore(engine, writer.types, outputs, config.node, now_ns=self.clock)
        self.engine = engine
        self.tracking = False
        self.bar = _progress_bar(len(ids), progress)

    def clock(self) -> int:
        """Bag time now: the last message's time, or in real time the bag clock running since playback began."""
        if self._realtime is None:
            return self._bag_ns
        bag_start, wall_start, rate = self._realtime
        return int(bag_start + (time.perf_counter() - wall_start) * rate * 1e9)

    def _publisher(self, name: str) -> Callable[[Any], None]:
        topic, msgtype = OUTPUT_TOPICS[name]

        def publish(msg: Any) -> None:
            self._write(topic, msgtype, msg)
            if name == "result":
                self._collect(json.loads(msg.data))
            elif name == "masks":
                self._write_color_masks(msg)
            elif name == "overlay":
                self._save_overlay(msg)

        return publish

    def _write(self, topic: str, msgtype: str, msg: Any) -> None:
        # The worker and the tracking thread both publish, and the bag writer is not thread-safe: every write
        # goes through this lock (an unlocked one interleaved inside an MCAP chunk and corrupted the bag).
        with self._write_lock:
            self.writer.write(topic, msgtype, msg, self.clock())

    def _save_overlay(self, msg: Any) -> None:
        """The round's overlay as ``overlays/round_NNN.png`` too (rounds in the order they finished)."""
        if self.overlay_dir is None or len(self.overlay_files) >= MAX_OVERLAY_FILES:
            return
        from reasonseg_ros.messages.image import image_to_numpy

        image_module = require("PIL.Image", "the overlay pictures")
        self.overlay_dir.mkdir(parents=True, exist_ok=True)
        name = f"round_{len(self.overlay_files):03d}.png"
        image_module.fromarray(image_to_numpy(msg)).save(self.overlay_dir / name)
        self.overlay_files.append(f"{self.overlay_dir.name}/{name}")

    def _write_color_masks(self, labels_msg: Any) -> None:
        from reasonseg_ros.messages.image import image_to_numpy, numpy_to_image
        from reasonseg_ros.overlay import colorize_labels

        picture = colorize_labels(image_to_numpy(labels_msg))
        msg = numpy_to_image(self.writer.types["sensor_msgs/msg/Image"], labels_msg.header, picture, "rgb8")
        self._write(COLOR_MASKS_TOPIC, "sensor_msgs/msg/Image", msg)

    def _collect(self, result: dict[str, Any]) -> None:
        queue = self._indices.get(result.get("instruction_id"))
        if not queue:
            self.unmatched.append(
                f"{result['instruction'][:60]!r}: {result['error']['message'] if result['error'] else 'ok'}"
            )
            return
        index = queue.popleft()
        self.results[index] = result
        if result["ok"] and result["frame"]:
            self.frame_ages_ms.append((self.clock() - result["frame"]["stamp_ns"]) / 1e6)
        self.bar.update(1)

    def enable_tracking(self) -> None:
        self.tracking = True

    def deliver(self, connection: Any, raw: bytes, reader: Any) -> None:
        msg = reader.deserialize(raw, connection.msgtype)
        if connection.msgtype == "sensor_msgs/msg/Image":
            self.core.on_image(msg)
        elif connection.topic == RESET_TOPIC:
            while not self.core.idle:  # the rounds of the ending video finish first, as on a robot
                time.sleep(0.005)
            self.core.on_reset_session(msg)
        else:
            self.core.on_instruction(msg, assigned_id=self._ids[self._delivered])
            self._delivered += 1

    def track_step(self) -> None:
        """One forced tracking step on the newest frame, published as the node publishes its own."""
        self.core.track_once(force=True)

    def play_deterministic(self, reader: Any, connections: list[Any]) -> None:
        for connection, timestamp, raw in reader.messages(connections=connections):
            self._bag_ns = timestamp
            self.deliver(connection, raw, reader)
            while self.core.process_next():
                pass
            if self.tracking and connection.msgtype == "sensor_msgs/msg/Image":
                self.track_step()

    def play_realtime(self, reader: Any, connections: list[Any], rate: float) -> None:
        stop = threading.Event()
        worker = threading.Thread(target=self.core.run, args=(stop, 0.02), name="replay-worker", daemon=True)
        worker.start()
        tracker = None
        if self.tracking:
            tracker = threading.Thread(target=self.core.run_tracking, args=(stop,), name="replay-tracking", daemon=True)
            tracker.start()
        try:
            for connection, timestamp, raw in reader.messages(connections=connections):
                if self._realtime is None:
                    self._realtime = (timestamp, time.perf_counter(), rate)
                delay = (timestamp - self.clock()) / 1e9 / rate
                if delay > 0:
                    time.sleep(delay)
                self.deliver(connection, raw, reader)
            while not self.core.idle:
                time.sleep(0.01)
        finally:
            stop.set()
            worker.join()
            if tracker is not None:
                tracker.join()

    def close(self) -> None:
        self.bar.close()


def _run_info(
    bag: Path,
    config: Config,
    options: ReplayOptions,
    engine: Engine,
    player: _Player,
    matching: Any,
    truth_source: str,
    wall_s: float,
    image_topic: str,
    instruction_topic: str,
) -> dict[str, Any]:
    results = list(player.results.values())
    ok = [r for r in results if r["ok"]]
    overhead = [r["timings_ms"]["total"] - sum(r["timings_ms"].get(stage, 0.0) for stage in MODEL_STAGES) for r in ok]
    errors = [
        f"{r['instruction'][:60]!r}: {r['error']['kind']}: {r['error']['message']}" for r in results if not r["ok"]
    ]
    return {
        "bag": str(bag),
        "mode": options.mode,
        "protocol": options.protocol,
        "rate": options.rate,
        "topics": {"image": image_topic, "instruction": instruction_topic},
        "ground_truth": truth_source,
        "segmenter": engine.segmenter.name,
        "reasoner": engine.reasoner.name,
        "random_weights": bool(getattr(engine.segmenter, "random_weights", config.segmenter.random_weights)),
        "checkpoint": getattr(engine.segmenter, "checkpoint", None) or config.segmenter.checkpoint,
        "fallback_reason": getattr(engine.segmenter, "fallback_reason", None),
        "config": _plain(config),
        "instructions": player.total,
        "rounds_ok": len(ok),
        "rounds_failed": len(results) - len(ok),
        "frames_received": player.core.counters["frames_received"],
        "frames_skipped": player.core.counters["frames_rejected"],
        "instructions_dropped": player.core.counters["instructions_dropped"],
        "encoder_runs": engine.encoder_runs,
        "wall_s": wall_s,
        "rounds_per_s": len(results) / wall_s if wall_s > 0 else None,
        "engine_overhead_ms": percentiles(overhead),
        "frame_age_ms": percentiles(player.frame_ages_ms),
        "mismatches": (matching.problems if matching else [])
        + [f"result without instruction: {u}" for u in player.unmatched]
        + [
            f"instruction id {i!r} is used more than once: its results are paired in bag order"
            for i in player.duplicate_ids
        ],
        "errors": errors,
        "last_skip_reason": player.core.last_image_error,
        "frame_skip_reasons": dict(player.core.frame_skip_reasons),
        "provenance": provenance(options.config_path, options.command),
    }


def provenance(config_path: str | None, command: str | None) -> dict[str, Any]:
    """What produced a run: package version, git commit, date, host, config file, command line."""
    import datetime
    import importlib.metadata
    import platform
    import subprocess

    try:
        version = importlib.metadata.version("reasonseg_ros")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown (not installed)"

    def git(*args: str) -> str:  # in the package's own folder: the checkout it was installed from
        here = Path(__file__).resolve().parent
        done = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=5, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        commit += " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    except (OSError, subprocess.SubprocessError):  # installed from a wheel, or no git
        commit = "unknown (not a git checkout)"
    return {
        "version": version,
        "commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "host": f"{platform.node()} ({platform.machine()}, {platform.system()}, Python {platform.python_version()})",
        "config": config_path or "built-in defaults",
        "command": command,
    }


def _plain(config: Config) -> dict[str, Any]:
    from reasonseg_ros.config import to_dict

    return to_dict(config)


class _NoBar:
    """Stands in for tqdm when no progress bar is wanted (tqdm need not be installed)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, progress: bool) -> Any:
    if not progress:
        return _NoBar()
    return require("tqdm", "the replay progress bar (or --quiet)").tqdm(total=total, unit="round", dynamic_ncols=True)
