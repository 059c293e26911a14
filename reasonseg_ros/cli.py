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

"""The ``reasonseg`` command: ``segment`` one image, ``export`` SAM, ``info`` on what is installed."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from reasonseg_ros.config import Config, load_config, to_dict
from reasonseg_ros.deps import available, require
from reasonseg_ros.errors import ReasonsegError
from reasonseg_ros.preflight import preflight

BACKEND_MODULES = {
    "segmenter torch": ["torch", "torchvision", "segment_anything"],
    "segmenter onnx": ["onnxruntime"],
    "segmenter tensorrt": ["tensorrt"],
    "segmenter sam2": ["torch", "sam2"],
    "tracker flow": ["cv2"],
    "tracker sam2": ["torch", "sam2"],
    "reasoner vlm": ["transformers"],
    "eval (replay, metrics)": ["rosbags", "pycocotools", "matplotlib"],
    "ros node": ["rclpy"],
}


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``key.sub=value`` pairs; values are read as YAML (``true``, ``3``, ``null``, text)."""
    yaml = require("yaml", "--set")
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ReasonsegError(f"--set takes key=value, got {pair!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            problem = " ".join(str(getattr(exc, "problem", None) or "not valid YAML").split())
            raise ReasonsegError(
                f"--set {key.strip()}: the value {value!r} is not valid YAML ({problem}); "
                f"quote it, e.g. --set '{key.strip()}=\"{value}\"'"
            ) from None
    return overrides


def load(args: argparse.Namespace) -> Config:
    overrides = parse_overrides(args.set)
    if getattr(args, "download", False):
        overrides["segmenter.download"] = True
    return load_config(args.config, overrides)


def cmd_segment(args: argparse.Namespace) -> int:
    import numpy as np

    from reasonseg_ros.engine import Engine
    from reasonseg_ros.masks import label_image
    from reasonseg_ros.messages.result_json import round_to_json
    from reasonseg_ros.overlay import overlay_of
    from reasonseg_ros.types import Frame, Instruction

    image_module = require("PIL.Image", "reading and writing images")
    config = load(args)
    try:
        with image_module.open(args.image) as picture:
            image = np.asarray(picture.convert("RGB"))
    except OSError as exc:
        raise ReasonsegError(f"cannot read image {args.image}: {exc}") from exc
    instruction = args.instruction
    if instruction.startswith("@"):
        try:
            instruction = Path(instruction[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ReasonsegError(
                f"cannot read the instruction file {instruction[1:]}: {reason}; give the text itself or @FILE"
            ) from None

    preflight(config)
    engine = Engine.from_config(config)
    engine.submit_frame(Frame(image, 0, Path(args.image).name))
    result = engine.handle(Instruction(instruction, session=args.session))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(round_to_json(result) + "\n")
    print(f"segmenter: {engine.segmenter.name}")
    print(f"reasoner:  {engine.reasoner.name}")
    if result.random_weights:
        print("RANDOM WEIGHTS: the masks below mean nothing (plumbing and timing only)")
        if getattr(engine.segmenter, "fallback_reason", None):
            print(f"  why: {engine.segmenter.fallback_reason}")
    if not result.ok:
        print(f"error ({result.error_kind}): {result.error}", file=sys.stderr)
        return 1
    masks = result.masks if result.masks is not None else np.zeros((0, *image.shape[:2]), dtype=bool)
    labels = label_image(masks, [o.object_id for o in result.objects])
    image_module.fromarray(labels).save(out / "masks.png")
    image_module.fromarray(overlay_of(result)).save(out / "overlay.png")
    for obj in result.objects:
        box = ", ".join(f"{v:.0f}" for v in obj.box)
        print(f"object {obj.object_id} '{obj.label}': box [{box}], {obj.area} px, score {obj.score:.3f}")
    for rejection in result.rejections:
        print(f"rejected '{rejection.phrase}': {rejection.reason}")
    timings = ", ".join(f"{k} {v:.1f}" for k, v in result.timings_ms.items())
    print(f"timings (ms): {timings}")
    print(f"wrote {out / 'result.json'}, {out / 'masks.png'}, {out / 'overlay.png'}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from reasonseg_ros.segmenter.download import WEIGHTS, download_hub, fetch, is_hub_id, verify

    config = load(args)
    cache = args.cache_dir or config.segmenter.cache_dir
    for name in args.names or ["vit_b"]:
        if name not in WEIGHTS and is_hub_id(name):
            print(f"{name}: {download_hub(name, args.hub_cache_dir)}")
            continue
        cached = Path(cache).expanduser() / WEIGHTS[name].file if name in WEIGHTS else None
        if cached is not None and cached.is_file():
            path, digest = verify(name, cache)  # a file already there is checked again, not trusted
            print(f"{name}: {path} (already there; sha256 {digest} verified)")
        else:
            print(f"{name}: {fetch(name, cache, progress=not args.quiet)} (downloaded, verified)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from reasonseg_ros.segmenter.checkpoints import SAM_ARCHS, cached_checkpoints

    config = load(args)
    print("backends:")
    for backend, modules in BACKEND_MODULES.items():
        missing = [m for m in modules if not available(m)]
        state = "available" if not missing else f"missing {', '.join(missing)}"
        print(f"  {backend:24s} {state}")
    cache = config.segmenter.cache_dir
    found = cached_checkpoints(cache)
    print(f"SAM checkpoints in {Path(cache).expanduser()}:")
    for name, arch in SAM_ARCHS.items():
        if arch.checkpoint_file:
            where = str(found[name]) if name in found else f"not cached ({arch.url})"
            print(f"  {name:8s} {where}")
    from reasonseg_ros.segmenter.download import WEIGHTS

    for name, spec in WEIGHTS.items():
        if name not in SAM_ARCHS:
            path = Path(cache).expanduser() / spec.file
            print(f"  {name:15s} {path if path.is_file() else 'not cached'}")
    print("  (fetch, verified: reasonseg download NAME)")
    print("config:")
    print(json.dumps({"segmenter": to_dict(config.segmenter), "reasoner": to_dict(config.reasoner)}, indent=2))
    return 0


def remove_bag(path: Path) -> None:
    """Delete a bag folder this tool wrote before (``--force``); anything else is left alone."""
    if not path.exists():
        return
    if not (path / "metadata.yaml").is_file():
        raise ReasonsegError(f"{path} exists and is not a bag folder: not removing it")
    shutil.rmtree(path)


def cmd_demo_bag(args: argparse.Namespace) -> int:
    from reasonseg_ros.eval.demo_bag import write_demo_bag

    if args.force:
        remove_bag(Path(args.out))
    try:
        path = write_demo_bag(args.out, frames=args.frames)
    except FileExistsError as exc:
        raise ReasonsegError(f"{exc} (or pass --force)") from exc
    except ValueError as exc:
        raise ReasonsegError(str(exc)) from exc
    print(f"wrote {path} (MCAP) with its ground truth {path / 'ground_truth.jsonl'}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from reasonseg_ros.eval.replay import ReplayOptions, replay
    from reasonseg_ros.eval.report import write_report

    config = load(args)
    preflight(config, Path(args.out) / "output_bag", args.force)  # before the models load, not after
    if args.force:
        remove_bag(Path(args.out) / "output_bag")
    options = ReplayOptions(
        mode=args.mode,
        image_topic=args.image_topic,
        instruction_topic=args.instruction_topic,
        ground_truth=Path(args.gt) if args.gt else None,
        rate=args.rate,
        progress=not args.quiet,
        export_masks=Path(args.export_masks) if args.export_masks else None,
        protocol=args.protocol,
        config_path=args.config,
        command=" ".join(["reasonseg", *(argv_of(args))]),
    )
    try:
        run = replay(args.bag, config, args.out, options)
    except (ValueError, FileExistsError) as exc:
        raise ReasonsegError(str(exc)) from exc
    written = write_report(run, args.out)
    if run.run["random_weights"]:
        print(f"RANDOM WEIGHTS: {run.run['segmenter']}; the scores measure the pipeline, not segmentation")
        if run.run.get("fallback_reason"):
            print(f"  why: {run.run['fallback_reason']}")
    else:
        print(f"weights: {run.run['segmenter']}")
    m = run.metrics
    print(
        f"gIoU {m['gIoU']}, cIoU {m['cIoU']}, N-acc {m['N-acc']}, T-acc {m['T-acc']} over {m['samples']} samples"
        f" ({m['protocol']} protocol)"
    )
    if "reference" in m:
        r = m["reference"]
        print(f"gIoU {r['gIoU']}, cIoU {r['cIoU']}, N-acc {r['N-acc']}, T-acc {r['T-acc']} (reference protocol)")
    if m.get("tracking"):
        t = m["tracking"]
        print(f"tracking J&F {t['J&F']} (J {t['J']}, F {t['F']}) over {t['objects']} objects, {t['steps']} steps")
    for problem in run.run["mismatches"]:
        print(f"mismatch: {problem}", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def argv_of(args: argparse.Namespace) -> list[str]:
    """The command line as typed (quoted where needed), for the report's provenance."""
    import shlex

    return [shlex.quote(a) for a in getattr(args, "argv", None) or sys.argv[1:]]


def cmd_convert(args: argparse.Namespace) -> int:
    from reasonseg_ros.eval.convert import convert

    try:
        bag, images, queries = convert(
            args.format, args.src, args.out, args.images, args.split, args.split_by, args.limit, not args.quiet
        )
    except (FileExistsError, ValueError, KeyError) as exc:
        raise ReasonsegError(f"convert {args.format}: {exc}") from exc
    print(f"wrote {bag}: {images} images, {queries} instructions, ground truth in {bag / 'ground_truth.jsonl'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from reasonseg_ros.segmenter.export import export_checkpoint

    config = load(args)
    if args.checkpoint is None and not args.random_weights:
        raise ReasonsegError("export needs --checkpoint FILE (or --random-weights for plumbing and timing only)")
    if args.tensorrt:
        require("tensorrt", "export --tensorrt")  # fail before minutes of export, not after
    report = export_checkpoint(
        args.sam, args.checkpoint, args.out, opset=args.opset or config.segmenter.export.opset, check=not args.no_check
    )
    if args.tensorrt:
        from reasonseg_ros.segmenter.trt_build import build_engines

        fp16 = config.segmenter.tensorrt.fp16 if args.fp16 is None else args.fp16
        build_engines(report.out_dir, args.sam, config.segmenter, fp16=fp16)
    print(f"wrote {report.encoder}, {report.decoder}; use segmenter.onnx.model_dir: {report.out_dir}")
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line like every other failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="reasonseg", description=__doc__)
    parser.add_argument("--version", action="version", version=f"reasonseg_ros {package_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="YAML config file (default: built-in defaults)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")

    segment = sub.add_parser("segment", help="segment one image and write masks, overlay and result JSON")
    segment.add_argument("image", help="image file (PNG, JPEG, ...)")
    segment.add_argument("instruction", help="the instruction text, or @file to read it from a file")
    segment.add_argument("--out", default="reasonseg_out", help="output folder (default: reasonseg_out)")
    segment.add_argument("--session", default="default")
    download_flag(segment)
    common(segment)
    segment.set_defaults(run=cmd_segment)

    demo = sub.add_parser("demo-bag", help="write a synthetic bag with a multi-round dialogue and exact ground truth")
    demo.add_argument("--out", required=True, help="output bag folder (must not exist)")
    demo.add_argument("--frames", type=int, default=40, help="frames at 10 Hz (default 40)")
    demo.add_argument("--force", action="store_true", help="replace an existing bag at --out")
    demo.set_defaults(run=cmd_demo_bag)

    rep = sub.add_parser("replay", help="drive the engine from a bag as the node would, score it, write a report")
    rep.add_argument("bag", help="input bag (folder, .mcap or .db3)")
    rep.add_argument("--out", required=True, help="output folder: output_bag/, metrics.json, report.md, plots")
    rep.add_argument("--gt", help="ground-truth JSON lines (default: ground_truth.jsonl in the bag folder)")
    rep.add_argument("--mode", choices=["deterministic", "realtime"], default="deterministic")
    rep.add_argument("--rate", type=float, default=1.0, help="playback rate in realtime mode")
    rep.add_argument(
        "--protocol",
        choices=["free", "reference", "both"],
        default="free",
        help="free: the model answers freely (default); reference: seg_token models are posed each sample and "
        "teacher-forced its ground-truth answer as their published evaluations did (docs/seg_token.md); "
        "both: free, then reference on the same loaded models, reported side by side",
    )
    rep.add_argument("--image-topic", help="default: replay.image_topic of the config")
    rep.add_argument("--instruction-topic", help="default: replay.instruction_topic of the config")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    rep.add_argument("--export-masks", help="with tracking on: write the tracked masks as DAVIS result PNGs here")
    rep.add_argument("--force", action="store_true", help="replace the output bag of an earlier run in --out")
    download_flag(rep)
    common(rep)
    rep.set_defaults(run=cmd_replay)

    from reasonseg_ros.eval.convert import FORMAT_HELP, FORMATS

    conv = sub.add_parser(
        "convert",
        help="turn a referring-segmentation dataset into a bag with ground truth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="formats (what SRC is):\n"
        + "\n".join(f"  {name:11s} {FORMAT_HELP.get(name, '')}" for name in FORMATS)
        + "\nmore in docs/evaluation.md",
    )
    conv.add_argument("format", choices=FORMATS)
    conv.add_argument("src", help="dataset folder (multiround: the JSON file)")
    conv.add_argument("--out", required=True, help="output bag folder (must not exist)")
    conv.add_argument("--images", help="image folder for the COCO-based formats (default: SRC/images)")
    conv.add_argument("--split", help="split to convert (train, val, testA, ...; reasonseg: the sub-folder)")
    conv.add_argument("--split-by", help="refs file variant: unc, umd, google, berkeley")
    conv.add_argument("--limit", type=int, help="at most this many instructions (davis: sequences)")
    conv.add_argument("--quiet", action="store_true", help="no progress bar")
    conv.set_defaults(run=cmd_convert)

    from reasonseg_ros.segmenter.checkpoints import SAM_ARCHS

    exp = sub.add_parser("export", help="export SAM to ONNX (encoder, decoder), optionally build TensorRT engines")
    exp.add_argument("--sam", required=True, choices=list(SAM_ARCHS), help="SAM architecture of the checkpoint")
    exp.add_argument("--checkpoint", help="SAM .pth file (official or fine-tuned)")
    exp.add_argument("--random-weights", action="store_true", help="no checkpoint: random weights (timing only)")
    exp.add_argument("--out", required=True, help="output folder: encoder.onnx, decoder.onnx, manifest.json")
    exp.add_argument("--opset", type=int, help="ONNX opset (default: segmenter.export.opset)")
    exp.add_argument("--tensorrt", action="store_true", help="also build TensorRT engines for this GPU")
    exp.add_argument(
        "--fp16",
        action=argparse.BooleanOptionalAction,
        help="fp16 engines, layer norms and softmax kept fp32 (default: segmenter.tensorrt.fp16, true)",
    )
    exp.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs torch check")
    common(exp)
    exp.set_defaults(run=cmd_export)

    from reasonseg_ros.segmenter.download import WEIGHTS

    dl = sub.add_parser(
        "download",
        help="fetch official weights, verified: SAM files by name, or a Hugging Face hub id (owner/name)",
    )
    dl.add_argument("names", nargs="*", metavar="NAME", help=f"{', '.join(WEIGHTS)} or a hub id (default: vit_b)")
    dl.add_argument("--cache-dir", help="where SAM files go (default: segmenter.cache_dir)")
    dl.add_argument("--hub-cache-dir", help="hub cache for hub ids (default: huggingface_hub's)")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    common(dl)
    dl.set_defaults(run=cmd_download)

    info = sub.add_parser("info", help="which backends and checkpoints are available")
    common(info)
    info.set_defaults(run=cmd_info)
    for command in sub.choices.values():  # also after the command; SUPPRESS keeps an earlier --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback")
    return parser


def download_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--download",
        action="store_true",
        help="fetch a missing official SAM checkpoint into segmenter.cache_dir first, SHA-256 verified",
    )


def package_version() -> str:
    """The installed distribution's version (the source tree's when not installed)."""
    from importlib import metadata

    try:
        return metadata.version("reasonseg_ros")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; every failure is one line on stderr (``--debug`` adds the traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("reasonseg: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, whatever it is: the traceback only on request
        if debug:
            traceback.print_exc()
        print(f"reasonseg: {failure_line(exc, debug)}", file=sys.stderr)
        return 2 if isinstance(exc, ReasonsegError | OSError) else 1


def failure_line(exc: BaseException, debug: bool = False) -> str:
    """What went wrong, on one line.

    Our errors as they are, an OS error with its file, else the type and the first line, with where to look
    further.
    """
    if isinstance(exc, ReasonsegError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    else:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        more = "" if debug else "; run again with --debug for the traceback"
        text = f"unexpected {type(exc).__name__}{': ' + first[:300] if first else ''}{more}"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
