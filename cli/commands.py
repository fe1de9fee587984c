"""``python -m zeroshot_video``: the pack's jobs without ComfyUI.

- ``demo``: generate a short video end to end (a tiny random backbone unless ``--model`` is given);
- ``make-test-models DIR``: write the tiny stand-in models under the names the shipped workflows use;
- ``submit WORKFLOW_API.json``: queue a workflow on a running ComfyUI server (``client.py``, stdlib only).

A failure is one line ``error: …`` on stderr and exit status 2 (``submit`` keeps its own codes); Ctrl-C
during ``demo`` writes the frames finished so far and exits 130. ``--debug`` shows tracebacks and the
libraries' own warnings and progress bars.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch

from .. import client
from ..core.conditioning import encode_text
from ..core.families import folder_half, load_backbone, motion_adapter_rule
from ..core.loading.file_checks import ModelFileError, available_memory, check_safetensors
from ..core.loading.file_kinds import describe, identify
from ..core.loading.parts import resolve_dtype
from ..core.memory_estimate import device_free_memory
from ..core.methods import fifo, i4vgen, t2v, ti2v_zero
from ..core.methods.anchor import gradient_image, make_anchor
from ..core.methods.host import Host
from ..core.methods.reward import load_reward_model
from ..core.methods.strategies import NoiseInit, Resample
from ..core.methods.t2v import FROM_LATENT_STREAM, NIVSDS_STREAM, seeded
from ..core.solvers import SAMPLERS
from ..core.validation import check_size
from ..core.video_io import write_video
from ..testing import standin_models, standins
from ..testing.standin_files_native import write_released_files

FAILED, INTERRUPTED = 2, 130
# t2v and i4vgen hold every frame in one model call: memory grows with frames (temporal attention with its
# square). 64 is four times the clips ModelScope/Zeroscope were trained on; AnimateDiff's motion table is
# lower still (backbone.max_frames, 32). Longer videos: TI2V-Zero or FIFO, a fixed window per call.
ONE_CALL_FRAMES = 64
MAX_SIDE = 4096
# Kept frames are float32 while sampling; writing the file converts the whole video at once (two more
# float-sized temporaries), so the frames need about three times their own size at the end.
WRITE_COPIES = 3
VIDEO_SUFFIXES = (".webp", ".gif", ".mp4")  # what core.video_io.write_video writes
ONE_CALL_METHODS = ("t2v", "i4vgen")

# The numeric demo flags' accepted ranges (dest -> (min, max), None = no fixed bound): the help shows
# them, _check_args enforces them before anything is loaded.
RANGES = {
    "frames": (1, None), "width": (8, MAX_SIDE), "height": (8, MAX_SIDE), "steps": (1, 999),
    "guidance": (0.0, 50.0), "eta": (0.0, 1.0), "seed": (0, 2 ** 64 - 1), "fps": (1, 100),
    "model_frames": (2, 1024), "resample": (0, 16), "candidates": (0, 256), "p": (0.0, 1.0),
    "p_re": (0.0, 1.0), "window_frames": (1, 128), "partitions": (1, 64), "window_batch": (1, 64),
    "frames_per_level": (1, 64),
    "fifo_eta": (0.0, 1.0),
}
# Flags that only some methods read: given to another method they are refused, not silently ignored.
USED_BY = {
    "steps": ("t2v", "ti2v-zero", "i4vgen"), "eta": ("t2v", "i4vgen"), "sampler": ("t2v", "i4vgen"),
    **dict.fromkeys(("image", "model_frames", "resample", "no_inversion", "latent_queue"), ("ti2v-zero",)),
    **dict.fromkeys(("reward_model", "candidates", "p", "step_sizes", "p_re"), ("i4vgen",)),
    **dict.fromkeys(("window_frames", "partitions", "window_batch", "no_lookahead", "fifo_eta", "frames_dir",
                     "frames_per_level"),
                    ("fifo",)),
}
WAN_FILE_FLAGS = ("text_encoder", "vae", "model_2")  # what a Wan diffusion model file as --model needs beside it
# Core checks name node inputs; from the command line the same rules are reported with its flags.
CORE_NAMES = {"window_frames": "--window-frames", "partitions": "--partitions", "step_sizes": "--step-sizes",
              "frames_per_level": "--frames-per-level",
              "turn lookahead off": "pass --no-lookahead", "model_frames": "--model-frames",
              "num_frames": "--frames", "num_candidates": "--candidates"}


class UsageError(ValueError):
    """A flag's value cannot work; the message names the flag and what to give instead."""


class StatusLine:
    """The pack's own progress, one line rewritten in place; ended before anything else is printed."""

    def __init__(self):
        self.open = False

    def show(self, text: str) -> None:
        print(f"\r  {text}", end="", flush=True)
        self.open = True

    def end(self) -> None:
        if self.open:
            print()
            self.open = False


STATUS = StatusLine()


class FramesSoFar:
    """The frames a sampler has finished, in order, as it finishes them, so that Ctrl-C still writes them.

    It holds what the sampler hands over (TI2V-Zero: views of its own video; FIFO: frames it keeps
    nowhere else), never a second copy. ``keep`` False only counts (FIFO streaming to disk)."""

    def __init__(self, keep: bool = True):
        self.keep, self.frames, self.given, self.count = keep, [], 0, 0

    def start_with(self, images: torch.Tensor) -> None:
        """Input frames the video begins with (TI2V-Zero's image): written with the rest, not counted as made."""
        self.frames.extend(images)
        self.given = images.shape[0]

    def add(self, index: int, frame: torch.Tensor) -> None:
        self.count += 1
        if self.keep:
            self.frames.append(frame)

    def take_video(self) -> torch.Tensor:
        """The frames as one tensor; the separate ones are let go, so no second copy outlives the call."""
        video = torch.stack(self.frames)
        self.frames.clear()
        return video


# --- the methods ---------------------------------------------------------------------------------
HOST = Host(free_memory=device_free_memory)


def _progress(backbone, what: str = "evaluation"):
    """An on_step callback showing 'transformer evaluation 3/22' (the backbone's own network name)."""
    return lambda i, n, *_: STATUS.show(f"{backbone.network_name} {what} {i}/{n}")


def _t2v(args, backbone, cond, made: FramesSoFar) -> torch.Tensor:
    latent = t2v.text_to_video(backbone, cond, frames=args.frames, width=args.width, height=args.height,
                               steps=args.steps, guidance=args.guidance, eta=args.eta, generator=seeded(args.seed),
                               sampler=args.sampler, host=HOST, on_step=_progress(backbone))
    STATUS.end()
    return backbone.decode(latent, free_memory=device_free_memory)


def _start_image(path: str | None, width: int, height: int) -> torch.Tensor:
    """IMAGE ``[1, H, W, 3]`` from a file, or a synthetic colour gradient when no file is given."""
    if path is None:
        print("No --image given: using a synthetic colour-gradient image as the first frame.")
        return gradient_image(width, height)
    import numpy as np
    from PIL import Image
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).unsqueeze(0)


def _ti2v_zero(args, backbone, cond, made: FramesSoFar) -> torch.Tensor:
    anchor = make_anchor(backbone, _start_image(args.image, args.width, args.height), args.width, args.height)
    made.start_with(anchor.image)
    print(f"TI2V-Zero: {args.frames} new frames after the image, {args.model_frames} frames per model call")
    frames, _ = ti2v_zero.image_to_video(
        backbone, cond, anchor, num_frames=args.frames, model_frames=args.model_frames, steps=args.steps,
        guidance=args.guidance, generator=seeded(args.seed),
        noise_init=NoiseInit("gaussian" if args.no_inversion else "ddpm_inversion"), resample=Resample(args.resample),
        latent_queue=args.latent_queue, host=HOST, on_step=_progress(backbone), on_frame=made.add)
    STATUS.end()
    return frames


def _i4vgen(args, backbone, cond, made: FramesSoFar) -> torch.Tensor:
    """The I4VGen graph in one go, with the seed streams its nodes use: candidates → reward selection →
    NI-VSDS → regeneration."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.reward_model
        if folder is None:
            print("No --reward-model given: using a tiny RANDOMLY INITIALISED CLIP; its choice of anchor is arbitrary.")
            folder = Path(scratch) / standin_models.REWARD_MODEL
            standin_models.write_reward_model(folder)
        reward = load_reward_model(folder)
    selection = i4vgen.select_anchor(
        backbone, cond, lambda images: reward.score(images, args.prompt, backbone.device), frames=args.frames,
        width=args.width, height=args.height, steps=args.steps, guidance=args.guidance,
        num_candidates=args.candidates, generator=seeded(args.seed), host=HOST,
        on_step=_progress(backbone, "candidate evaluation"))
    STATUS.end()
    print("I4VGen candidate scores:\n" + i4vgen.format_scores(selection))
    moved = i4vgen.animate_anchor(backbone, cond, selection.anchor, steps=args.steps, guidance=args.guidance,
                                  p=args.p, step_sizes=args.step_sizes, generator=seeded(args.seed, NIVSDS_STREAM),
                                  host=HOST, on_step=lambda k, n, x: STATUS.show(f"NI-VSDS {k}/{n}"))
    STATUS.end()
    latent = t2v.text_to_video(backbone, cond, frames=args.frames, width=args.width, height=args.height,
                               steps=args.steps, guidance=args.guidance, eta=args.eta,
                               generator=seeded(args.seed, FROM_LATENT_STREAM), latent=moved, denoise=args.p_re,
                               sampler=args.sampler, host=HOST, on_step=_progress(backbone, "regeneration"))
    STATUS.end()
    return backbone.decode(latent, free_memory=device_free_memory)


def _fifo(args, backbone, cond, made: FramesSoFar) -> torch.Tensor | None:
    """FIFO-Diffusion: a base clip of the window's frames sampled on FIFO's grid in its forced S = f·n steps,
    then diagonal denoising. Frames are kept only in ``made`` (none with ``--frames-dir``: they stream to PNG
    files); None then."""
    lookahead = not args.no_lookahead
    clip = fifo.base_clip_for(backbone, args.window_frames, args.partitions, lookahead, args.frames_per_level)
    base = t2v.text_to_video(backbone, cond, frames=clip.frames, width=args.width, height=args.height,
                             steps=clip.steps, guidance=args.guidance, eta=args.fifo_eta, generator=seeded(args.seed),
                             grid=clip.grid, host=HOST, on_step=_progress(backbone, "base clip evaluation"))
    STATUS.end()
    print(f"FIFO: base clip of {clip.frames} frames in {clip.steps} steps, then {args.frames} frames "
          f"({clip.warmup} warm-up iterations dropped, {clip.windows} windows per iteration)")
    fifo.long_video(backbone, cond, base, num_frames=args.frames, window_frames=args.window_frames,
                    partitions=args.partitions, lookahead=lookahead, frames_per_level=args.frames_per_level,
                    eta=args.fifo_eta, guidance=args.guidance,
                    generator=seeded(args.seed), window_batch=args.window_batch,
                    stream_to=None if args.frames_dir is None else Path(args.frames_dir), keep_frames=False,
                    host=HOST, on_step=lambda k, n: STATUS.show(f"iteration {k}/{n}"), on_frame=made.add)
    STATUS.end()
    return made.take_video() if made.keep else None


# Each method of the pack adds its demo here: name -> function(args, backbone, conditioning, made) -> frames.
# ``made`` receives each frame the moment it is finished (methods that make frames one by one), so an
# interrupted run can still write them; t2v and i4vgen decode every frame at the very end and never call it.
DEMOS: dict[str, Callable] = {"t2v": _t2v, "ti2v-zero": _ti2v_zero, "i4vgen": _i4vgen, "fifo": _fifo}


# --- checks before any work --------------------------------------------------------------------
def _with_flags(error: ValueError) -> UsageError:
    """A core rule, said with the command line's flag names instead of the node inputs'."""
    pattern = "|".join(re.escape(name) for name in CORE_NAMES)
    return UsageError(re.sub(rf"\b({pattern})\b", lambda m: CORE_NAMES[m.group(1)], str(error)))


def _core_check(check: Callable, *values) -> None:
    """Runs a core check and reports its rule with the command line's flag names."""
    try:
        check(*values)
    except ValueError as error:
        raise _with_flags(error) from None


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _span(dest: str) -> str:
    low, high = RANGES[dest]
    return f"{low}..{high}" if high is not None else f"at least {low}"


def _device(name: str | None) -> torch.device:
    """The device to run on, refused with the reason before anything is loaded onto it."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {name}: not a device name; use cpu, cuda or cuda:N.") from None
    if device.type == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            raise UsageError(f"--device {name}: this PyTorch ({torch.__version__}) was built without CUDA. Install "
                             "a CUDA build of torch (https://pytorch.org/get-started), or use --device cpu.")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {name}: no CUDA GPU is visible (driver, CUDA_VISIBLE_DEVICES); "
                             "use --device cpu.")
        if device.index is not None and device.index >= count:
            raise UsageError(f"--device {name}: there {'is 1 CUDA GPU' if count == 1 else f'are {count} CUDA GPUs'}"
                             f" (cuda:0..cuda:{count - 1}).")
    elif device.type != "cpu":
        backend = getattr(torch.backends, device.type, None) or getattr(torch, device.type, None)
        if backend is None or not backend.is_available():
            raise UsageError(f"--device {name}: not available on this machine; use cpu or cuda.")
    return device


def _single_file_kind(args) -> str | None:
    """What a single-file ``--model`` is (``single_file_kinds``' kind), read from its header alone, with the
    companion flags it needs checked; None for a folder or no ``--model``."""
    companions = [_flag(dest) for dest in WAN_FILE_FLAGS if getattr(args, dest) is not None]
    for dest in WAN_FILE_FLAGS:
        value = getattr(args, dest)
        if value is not None and not Path(value).is_file():
            raise UsageError(f"{_flag(dest)} {value}: no such file.")
    model = None if args.model is None else Path(args.model)
    if model is None or model.is_dir():
        if companions:
            raise UsageError(f"{' and '.join(companions)} go with a Wan diffusion model file as --model; a "
                             "diffusers folder holds its own text encoder and VAE.")
        return None
    if model.suffix != ".safetensors":
        raise UsageError(f"--model {model} is a file but not .safetensors: give a diffusers model folder (the one "
                         "holding model_index.json) or a .safetensors single file.")
    try:
        kind = identify(check_safetensors(model))
    except ModelFileError as error:
        raise UsageError(f"--model: {error}") from None
    if kind == "sd15_checkpoint":
        if companions:
            raise UsageError(f"--model {model} is a Stable Diffusion 1.5 checkpoint, which holds its own text "
                             f"encoder and VAE: drop {' and '.join(companions)}.")
        if args.motion_adapter is None:
            raise UsageError(f"--model {model} is a Stable Diffusion 1.5 (image) checkpoint: add --motion-adapter "
                             "with an AnimateDiff motion module (file or folder) to make it a video model.")
        return kind
    if kind == "wan_transformer":
        missing = [_flag(dest) for dest in ("text_encoder", "vae") if getattr(args, dest) is None]
        if missing:
            raise UsageError(f"--model {model} is a Wan diffusion model: add {' and '.join(missing)} (its UMT5 text "
                             "encoder and Wan VAE files, from ComfyUI's models/text_encoders and models/vae).")
        if args.motion_adapter is not None:
            raise UsageError(f"--model {model} is a Wan diffusion model: drop --motion-adapter (it turns Stable "
                             "Diffusion 1.5 models into video models).")
        return kind
    raise UsageError(f"--model {model} is {describe(kind)}, not a model the demo runs: give a diffusers model "
                     "folder, a Stable Diffusion 1.5 checkpoint (with --motion-adapter) or a Wan diffusion model "
                     "(with --text-encoder and --vae).")


def _check_model_paths(args) -> None:
    if args.model is not None and not Path(args.model).exists():
        raise UsageError(f"--model {args.model}: no such folder or file.")
    if args.motion_adapter is not None and not Path(args.motion_adapter).exists():
        raise UsageError(f"--motion-adapter {args.motion_adapter}: no such file or folder.")
    if _single_file_kind(args) is not None:
        return
    if args.motion_adapter is not None:
        if args.model is None:
            raise UsageError("--motion-adapter needs --model, a Stable Diffusion 1.5 folder to add its motion "
                             "modules to (the built-in stand-in is a ModelScope-family model).")
    if args.model is None:
        return
    try:
        rule = motion_adapter_rule(args.model)
    except ValueError as error:
        raise UsageError(f"--model {args.model}: {error}") from None
    if rule == "refused" and args.motion_adapter is not None:
        raise UsageError(f"--model {args.model} is a video model with its own temporal layers: drop "
                         "--motion-adapter (it turns Stable Diffusion 1.5 models into video models).")
    if rule == "needed" and args.motion_adapter is None:
        raise UsageError(f"--model {args.model} is a Stable Diffusion 1.5 (image) folder: add --motion-adapter with "
                         "an AnimateDiff motion adapter (folder or .safetensors) to make it a video model.")


def _check_inputs(args) -> None:
    if args.image is not None:
        from PIL import Image, UnidentifiedImageError
        if not Path(args.image).is_file():
            raise UsageError(f"--image {args.image}: no such file.")
        try:
            with Image.open(args.image):
                pass
        except UnidentifiedImageError:
            raise UsageError(f"--image {args.image}: not an image file Pillow can read (use .png or .jpg).") from None
    if args.reward_model is not None and not Path(args.reward_model).is_dir():
        raise UsageError(f"--reward-model {args.reward_model}: no such folder (a transformers CLIP model folder, "
                         "e.g. PickScore_v1).")


def _check_outputs(args) -> None:
    """Where the result goes, checked (and its folder made) before any work, so none is lost at the end."""
    if args.frames_dir is not None:
        folder = Path(args.frames_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--frames-dir {folder}: cannot create the folder ({error.strerror or error}).") from None
        if next(folder.glob("frame_*.png"), None) is not None:
            raise UsageError(f"--frames-dir {folder} already holds frame_*.png files: choose an empty folder or "
                             "remove them first.")
        return
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder: give a file name such as {out / ('demo' + VIDEO_SUFFIXES[0])}.")
    if out.suffix not in VIDEO_SUFFIXES:
        raise UsageError(f"--out {out}: cannot write '{out.suffix or 'no suffix'}' files; end the name in "
                         f"{', '.join(VIDEO_SUFFIXES)}.")
    if out.suffix == ".mp4":
        try:
            import av  # noqa: F401
        except ImportError:
            raise UsageError(f"--out {out}: writing .mp4 needs PyAV (pip install av); or end the name in .webp "
                             "or .gif.") from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next(folder for folder in out.parents if folder.exists())
        raise UsageError(f"--out {out}: {blocking} is a file, not a folder.") from None
    except OSError as error:
        raise UsageError(f"--out {out}: cannot create the folder {out.parent} ({error.strerror or error}).") from None
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"--out {out}: the folder {out.parent} is not writable.")


def _check_args(args) -> None:
    """Everything that can be checked without a model, before anything is loaded."""
    defaults = vars(_demo_arguments(argparse.ArgumentParser(add_help=False)).parse_args([]))
    for dest, methods in USED_BY.items():
        if args.method not in methods and getattr(args, dest) != defaults[dest]:
            raise UsageError(f"{_flag(dest)} applies to --method {' / '.join(methods)}, not {args.method}.")
    if args.frames_dir is not None and args.out != defaults["out"]:
        raise UsageError("--frames-dir writes PNG frames instead of a video file: drop --out or --frames-dir.")
    for dest, (low, high) in RANGES.items():
        value = getattr(args, dest)
        if value is None:  # a default the loaded model decides (_family_defaults)
            continue
        if not (low <= value and (high is None or value <= high)):
            raise UsageError(f"{_flag(dest)} {value}: must be within {_span(dest)}.")
    try:
        check_size(args.width, args.height)
    except ValueError as error:
        raise UsageError(f"--width/--height: {error}") from None
    if args.method in ONE_CALL_METHODS and args.frames is not None and args.frames > ONE_CALL_FRAMES:
        raise UsageError(f"--frames {args.frames}: --method {args.method} makes all frames in one model call, at "
                         f"most {ONE_CALL_FRAMES}. For longer videos use --method fifo (any length; --frames-dir "
                         "streams the frames to disk) or --method ti2v-zero.")
    if args.method == "fifo" and args.window_frames is not None:
        _core_check(fifo.check_window_request, args.window_frames, args.partitions)
    if args.method == "i4vgen":
        _core_check(i4vgen.parse_step_sizes, args.step_sizes)
    if args.sampler != "euler" and args.eta > 0:
        raise UsageError(f"--sampler {args.sampler} is deterministic: --eta applies to --sampler euler only.")
    args.device = _device(args.device)
    _check_model_paths(args)
    _check_inputs(args)
    _check_outputs(args)


def _memory_needed(args, backbone) -> int:
    """Bytes the frames a run keeps will take, written included (see WRITE_COPIES), plus kept latents."""
    if args.frames_dir is not None:
        return 0
    latent = 4 * torch.Size(backbone.latent_shape(1, args.width, args.height)).numel()  # one frame, float32
    image = 4 * 3 * args.width * args.height
    kept = args.frames + (1 if args.method == "ti2v-zero" else 0)
    extra = (args.candidates or args.frames) * image if args.method == "i4vgen" else 0  # the candidate images
    return WRITE_COPIES * kept * image + kept * latent + extra


FRAMES, MODEL_FRAMES, WINDOW_FRAMES = 8, 16, 4
"""What the defaults aim at; each becomes the nearest count the loaded model takes (``_family_defaults``)."""


def _family_defaults(args, backbone) -> None:
    """The frame flags left at their defaults, as counts valid on the loaded model: Wan's VAE takes 4k + 1 video
    frames (9, not 8; a 17-frame model call; a 5-frame FIFO window of 2 latent frames for lookahead), and each new
    TI2V-Zero latent frame is 4 video frames."""
    if args.frames is None:
        step = backbone.frames_per_latent
        args.frames = (-(-FRAMES // step) * step if args.method == "ti2v-zero"
                       else backbone.nearest_video_frames(FRAMES)[1])
    if args.model_frames is None:
        args.model_frames = backbone.nearest_video_frames(MODEL_FRAMES)[1]
    if args.window_frames is None:
        args.window_frames = fifo.default_window(backbone, WINDOW_FRAMES, not args.no_lookahead)


def _check_for_backbone(args, backbone) -> None:
    """The defaults the loaded model decides, and the memory the kept frames need, before any sampling."""
    _family_defaults(args, backbone)
    limit = backbone.max_frames
    per_call = {"t2v": "frames", "i4vgen": "frames", "ti2v-zero": "model_frames", "fifo": "window_frames"}
    dest = per_call[args.method]
    if limit is not None and getattr(args, dest) > backbone.video_frames(limit):
        longer = (" For longer videos use --method fifo or --method ti2v-zero."
                  if args.method in ONE_CALL_METHODS else "")
        raise UsageError(f"{_flag(dest)} {getattr(args, dest)}: {backbone.name} takes at most "
                         f"{backbone.video_frames(limit)} frames in one model call.{longer}")
    needed, available = _memory_needed(args, backbone), available_memory()
    if available is not None and needed > available:
        instead = {"fifo": ", or add --frames-dir DIR: FIFO then streams the frames to disk and keeps none",
                   "ti2v-zero": ", or use --method fifo --frames-dir DIR, which streams the frames to disk"}
        raise UsageError(f"--frames {args.frames} at {args.width}x{args.height} needs about {needed / 2 ** 30:.1f} GB "
                         f"of memory for the frames (float32, and converted copies while the file is written); "
                         f"{available / 2 ** 30:.1f} GB is available. Lower --frames or --width/--height"
                         f"{instead.get(args.method, '')}.")


# --- the commands ------------------------------------------------------------------------------
def _backbone(args, scratch: Path):
    if args.model is None:
        print("No --model given: using a tiny RANDOMLY INITIALISED backbone. Its video is noise; it only shows the "
              "pipeline running end to end. Pass --model <diffusers folder> for a real one.")
        standin_models.write_modelscope(scratch / "tiny")
        args.model = str(scratch / "tiny")
    kind = _single_file_kind(args)
    if kind == "wan_transformer":
        from ..core.families.wan.expert_names import check_expert_files
        from ..core.families.wan.files import HALF, load_wan_files
        if args.model_2 is not None:  # Wan 2.2 A14B's experts the wrong way round, told by their names
            _core_check(check_expert_files, ("--model", Path(args.model).name),
                        ("--model-2", Path(args.model_2).name))
        backbone = load_wan_files(Path(args.model), Path(args.text_encoder), Path(args.vae),
                                  resolve_dtype(args.dtype, args.device, HALF),
                                  transformer_2=None if args.model_2 is None else Path(args.model_2))
    elif kind == "sd15_checkpoint":
        from ..core.families.unet.sd15_checkpoint import load_sd15_checkpoint
        backbone = load_sd15_checkpoint(args.model, args.motion_adapter, dtype=resolve_dtype(args.dtype, args.device))
    else:
        backbone = load_backbone(args.model, motion_adapter=args.motion_adapter,
                                 dtype=resolve_dtype(args.dtype, args.device, folder_half(args.model)))
    return backbone.to(args.device)


def _interrupted(args, made: FramesSoFar) -> int:
    """Ctrl-C: write whatever frames are finished, say how many and where, exit 130."""
    STATUS.end()
    total = made.given + args.frames
    if made.count == 0:
        why = (f"--method {args.method} decodes every frame at the end" if args.method in ONE_CALL_METHODS
               else "stopped before the first one")
        print(f"interrupted: no frame was finished ({why}); nothing was written.", file=sys.stderr)
    elif not made.keep:
        print(f"interrupted: {made.count} of {args.frames} frames are in {args.frames_dir}.", file=sys.stderr)
    else:
        frames = made.take_video()
        out = write_video(frames, args.out, args.fps)
        print(f"interrupted: wrote {frames.shape[0]} of {total} frames to {out}.", file=sys.stderr)
    return INTERRUPTED


def demo(args) -> int:
    _check_args(args)
    started = time.perf_counter()
    made = FramesSoFar(keep=args.frames_dir is None)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            backbone = _backbone(args, Path(scratch))
            _check_for_backbone(args, backbone)
            cond = encode_text(backbone, args.prompt, args.negative_prompt)
            frames = DEMOS[args.method](args, backbone, cond, made)
        except KeyboardInterrupt:
            return _interrupted(args, made)
        except UsageError:
            raise
        except ValueError as error:  # the entry points' checks, made before any work, name node inputs
            raise _with_flags(error) from None
    elapsed = time.perf_counter() - started
    if frames is None:
        print(f"wrote {made.count} frames to {args.frames_dir} (frame_000000.png …) in {elapsed:.1f}s; e.g. "
              f"ffmpeg -framerate {args.fps} -i {Path(args.frames_dir) / 'frame_%06d.png'} clip.mp4 makes a video")
        return 0
    out = write_video(frames, args.out, args.fps)
    print(f"wrote {out} ({frames.shape[0]} frames, {frames.shape[2]}x{frames.shape[1]}) in {elapsed:.1f}s")
    return 0


def make_test_models(args) -> None:
    for path in standins.write_all(args.models_dir):
        print(path)
    if args.comfyui_wan:
        for path in write_released_files(args.models_dir).values():
            print(path)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each flag's default, except where there is none to show (its help says what happens instead)."""

    def _get_help_string(self, action):
        if action.default is None or action.default == "" or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _demo_arguments(d: argparse.ArgumentParser) -> argparse.ArgumentParser:
    def ranged(group, flag: str, kind: type, default, text: str) -> None:
        group.add_argument(flag, type=kind, default=default, help=f"{text} [{_span(flag[2:].replace('-', '_'))}]")

    d.add_argument("--method", choices=sorted(DEMOS), default="t2v",
                   help="t2v and i4vgen make all frames in one model call; ti2v-zero and fifo any number")
    d.add_argument("--model", help="diffusers model folder, or one .safetensors file as ComfyUI keeps them: a "
                   "Stable Diffusion 1.5 checkpoint (add --motion-adapter) or a Wan diffusion model (add "
                   "--text-encoder and --vae) (default: a tiny random stand-in)")
    d.add_argument("--motion-adapter", help="AnimateDiff motion adapter or motion module (folder or .safetensors) "
                   "for an SD1.5 --model")
    wan = d.add_argument_group("a Wan diffusion model file as --model (ComfyUI's models/diffusion_models)")
    wan.add_argument("--text-encoder", help="its UMT5-XXL text encoder file (models/text_encoders), e.g. "
                     "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
    wan.add_argument("--vae", help="its Wan VAE file (models/vae), e.g. wan_2.1_vae.safetensors")
    wan.add_argument("--model-2", help="Wan 2.2 A14B: the low-noise expert file, with the high-noise one as --model")
    d.add_argument("--prompt", default="a red panda eating bamboo", help="what the video shows")
    d.add_argument("--negative-prompt", default="", help="what it should not show")
    ranged(d, "--frames", int, None, f"frames to make (default: {FRAMES}, or the nearest count the model takes: "
                                     f"Wan 9). t2v/i4vgen: at most {ONE_CALL_FRAMES} (AnimateDiff: at most its motion "
                                     "table, 32); ti2v-zero/fifo: any number the memory holds; Wan: 4k + 1 (ti2v-zero: "
                                     "new frames, a multiple of 4)")
    ranged(d, "--width", int, 64, "pixels, a multiple of 8")
    ranged(d, "--height", int, 64, "pixels, a multiple of 8")
    ranged(d, "--steps", int, 10, "DDIM steps (t2v, i4vgen; ti2v-zero: per new frame)")
    ranged(d, "--guidance", float, 9.0, "classifier-free guidance scale")
    ranged(d, "--eta", float, 0.0, "DDIM stochasticity, 0 deterministic (t2v, i4vgen)")
    d.add_argument("--sampler", choices=list(SAMPLERS), default="euler",
                   help="plain sampling's solver (t2v, i4vgen's regeneration): euler (DDIM on ModelScope / "
                        "AnimateDiff) or uni_pc (the model's own diffusers UniPC)")
    ranged(d, "--seed", int, 0, "random seed")
    ranged(d, "--fps", int, 8, "frames per second of the file")
    d.add_argument("--dtype", choices=["auto", "fp16", "bf16", "fp32"], default="auto",
                   help="auto: fp16 on a GPU, fp32 on the CPU")
    d.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    d.add_argument("--out", default="demo.webp", help="the video file: .webp, .gif or .mp4 (needs PyAV)")
    ti2v = d.add_argument_group("ti2v-zero (--frames = new frames after the image; --width/--height = its size)")
    ti2v.add_argument("--image", help="first frame (.png/.jpg); default: a synthetic gradient")
    ranged(ti2v, "--model-frames", int, None, f"F, frames per model call (queue = F - 1); default {MODEL_FRAMES}, "
                                                "or the nearest count the model takes (Wan: 17)")
    ranged(ti2v, "--resample", int, 4, "R, resampling rounds per step (paper: 4)")
    ti2v.add_argument("--no-inversion", action="store_true", help="start new frames from Gaussian noise")
    ti2v.add_argument("--latent-queue", action="store_true", help="keep the queue as latents (faster, a deviation)")
    i4v = d.add_argument_group("i4vgen")
    i4v.add_argument("--reward-model", help="CLIP-family reward model folder, e.g. PickScore_v1 (default: tiny random)")
    ranged(i4v, "--candidates", int, 0, "N anchor candidates (0 = one per frame)")
    ranged(i4v, "--p", float, i4vgen.DEFAULT_P, "NI-VSDS: int(steps*p)+1 iterations")
    i4v.add_argument("--step-sizes", default=",".join(f"{a:g}" for a in i4vgen.DEFAULT_STEP_SIZES),
                     help="NI-VSDS step sizes, comma-separated numbers >= 0, the last repeats")
    ranged(i4v, "--p-re", float, 1.0, "regeneration denoise strength (AnimateDiff 1.0)")
    ff = d.add_argument_group("fifo (--frames = output frames; steps are forced to window-frames x partitions)")
    ranged(ff, "--window-frames", int, None, f"f, frames per model call; default {WINDOW_FRAMES}, or the nearest "
                                               "window the model takes (Wan: 5). Lookahead needs an even number of "
                                               "latent frames (Wan: 4k + 1 video frames with k + 1 even, e.g. 77). "
                                               "Real models: 16 (Wan 77)")
    ranged(ff, "--partitions", int, 2, "n; S = f*n steps, at most 1000 (paper: 4)")
    ranged(ff, "--window-batch", int, 4, "windows per model call (result does not change)")
    ff.add_argument("--no-lookahead", action="store_true", help="disjoint windows (half the model calls)")
    ranged(ff, "--frames-per-level", int, 1, "c, consecutive latent frames that share a noise level: the queue needs "
                                           "window x partitions / c levels and emits c frames per iteration, so a "
                                           "4-step distilled model drives FIFO (1 = the paper)")
    ranged(ff, "--fifo-eta", float, 1.0, "DDIM eta of the base clip and the FIFO loop")
    ff.add_argument("--frames-dir", help="write each frame as DIR/frame_000000.png … the moment it is made and keep "
                                         "none in memory (any length); no --out video is written then")
    return d


def parser() -> argparse.ArgumentParser:
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on failure show the traceback; show the libraries' warnings and progress bars")
    top = argparse.ArgumentParser(prog="python -m zeroshot_video", description=__doc__, parents=[debug],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="generate a short video without ComfyUI", parents=[debug],
                       formatter_class=_HelpFormatter,
                       epilog="Exit status: 0 done, 2 a bad option or a failure (one line on stderr), 130 "
                              "interrupted (Ctrl-C writes the frames finished so far to --out).")
    _demo_arguments(d).set_defaults(run=demo)
    m = sub.add_parser("make-test-models", help="write tiny random stand-in models into a ComfyUI models folder",
                       parents=[debug])
    m.add_argument("models_dir")
    m.add_argument("--comfyui-wan", action="store_true",
                   help="write the Wan single files (diffusion models, UMT5, VAEs) and the lightx2v LoRAs under their "
                        "released names in a form ComfyUI's own loaders take too (one 128-wide head, 4096 text "
                        "features, full-size random VAEs: 1.7 GB), in place of the pack's tinier ones")
    m.set_defaults(run=make_test_models)
    s = sub.add_parser("submit", help="queue an API-format workflow on a running ComfyUI server, follow it and "
                                      "download its outputs (exit 0 ok, 2 rejected, 3 failed, 4 unreachable)",
                       parents=[debug])
    client.add_arguments(s)
    s.set_defaults(run=client.run_args)
    return top


@contextmanager
def _quiet_libraries():
    """diffusers/transformers/accelerate warn (often twice) and draw a progress bar per model part; those
    lines bury the pack's own. Silenced for the call, put back afterwards (``--debug`` keeps them)."""
    from diffusers.utils import logging as diffusers_logging
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as transformers_logging
    loggers = [logging.getLogger(name) for name in ("diffusers", "transformers", "accelerate", "huggingface_hub")]
    levels = [logger.level for logger in loggers]
    bars = [(lib.is_progress_bar_enabled(), lib.enable_progress_bar, lib.disable_progress_bar)
            for lib in (diffusers_logging, transformers_logging)]
    bars.append((not hub_utils.are_progress_bars_disabled(), hub_utils.enable_progress_bars,
                 hub_utils.disable_progress_bars))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        for _, _, disable in bars:
            disable()
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
            for was_on, enable, _ in bars:
                if was_on:
                    enable()


def _one_line(error: BaseException) -> str:
    if isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError)):
        return ("out of memory: lower --frames, --width/--height (i4vgen: --candidates; fifo: --window-batch), "
                "or on a GPU use --dtype fp16.")
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (ValueError, OSError)):
        return text
    return f"{type(error).__name__}: {text} (an unexpected failure; run with --debug for the traceback)"


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    submitting = args.run is client.run_args  # stdlib only, with its own exit codes
    try:
        if debug or submitting:
            status = args.run(args)
        else:
            with _quiet_libraries():
                status = args.run(args)
    except KeyboardInterrupt:
        STATUS.end()
        print("interrupted", file=sys.stderr)
        return client.FAILED if submitting else INTERRUPTED
    except Exception as error:
        STATUS.end()
        if debug:
            raise
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return FAILED
    return status if isinstance(status, int) else 0  # submit returns its exit code
