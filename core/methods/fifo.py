"""FIFO-Diffusion: unlimited-length video at constant memory by diagonal denoising (FIFO.md).

A queue of latent frames sits at rising noise levels, one level per slot, head (clean) to tail (noise).
Every iteration denoises each window of the queue by one level per frame (per-frame timesteps), emits the
head, and pushes a fresh noise frame in at the tail, so a frame entering at the tail comes out clean
exactly S iterations later. Levels belong to slots, never to frames, so the labels are the same every
iteration.

All windows of an iteration read the queue as it was at the start of the iteration, so their order does
not matter and they run as stacked batches of up to ``window_batch`` windows in one UNet call each.
Randomness is drawn per iteration for the whole queue in a fixed order, so the result does not depend on
the batching either.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..conditioning import Conditioning, ImageTokens
from ..loading.file_checks import available_memory
from ..schedule import Schedule
from .strategies import NoiseInit
from .host import Host
from .t2v import noise_like

# (first output frame, conditioning from that frame on): the prompt of a long video over time.
PromptSchedule = Sequence[tuple[int, Conditioning]]


@dataclass(frozen=True)
class FifoPlan:
    """The queue layout: per-slot levels, per-slot targets and the windows, fixed for a whole run."""

    frames: int  # f, frames per UNet call
    partitions: int  # n
    labels: tuple[int, ...]  # per slot, head → tail; non-decreasing
    targets: tuple[int, ...]  # per slot, the level its update goes to (the next slot's label towards the head)
    windows: tuple[int, ...]  # first slot of each window, in the order they run
    write_from: int  # offset inside a window where write-back starts (f/2 with lookahead: second half only)
    head: int  # first slot emitted every iteration (the first slot after the lookahead dummies)
    group: int = 1  # c, consecutive frames that share a level: each iteration emits c frames (1 = the paper)

    @property
    def slots(self) -> int:
        """The real (non-dummy) slots, f·n."""
        return self.frames * self.partitions

    @property
    def steps(self) -> int:
        """S, the distinct levels: f·n / c (the base clip's step count)."""
        return self.slots // self.group

    @property
    def length(self) -> int:
        return len(self.labels)

    @property
    def warmup(self) -> int:
        """Iterations before the first kept emission (their c frames each are near-copies of base frame 0 from
        the queue's rising part)."""
        return (self.slots - self.frames) // self.group


def check_fifo_shape(frames: int, partitions: int, lookahead: bool, max_frames: int | None = None,
                     num_train_timesteps: int = 1000, group: int = 1) -> None:
    """The window/partition checks that need no model; ``max_frames`` is the backbone's window limit."""
    if frames < 1:
        raise ValueError(f"window_frames must be at least 1, got {frames}")
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    if max_frames is not None and frames > max_frames:
        raise ValueError(f"window_frames {frames} is longer than this backbone takes in one call ({max_frames} "
                         f"frames): set window_frames to at most {max_frames}.")
    if lookahead and frames % 2:
        raise ValueError(f"lookahead denoising needs an even window_frames (it writes back the second half of "
                         f"each window); got {frames}. Use {frames + 1} or turn lookahead off.")
    steps = frames * partitions // group
    product = "window_frames × partitions" + (" / frames_per_level" if group > 1 else "")
    if steps < 2:
        raise ValueError(f"{product} must be at least 2: with one level the queue has only the clean head and "
                         "nothing is ever denoised.")
    if steps > num_train_timesteps:
        raise ValueError(f"{product} = {steps} steps exceeds the {num_train_timesteps} training timesteps: lower "
                         "partitions.")


def check_window_request(video_frames: int, partitions: int) -> None:
    """What can be checked of a window given in video frames before the backbone is known (its frame rule and the
    lookahead parity are the backbone's: :func:`window_latent_frames`)."""
    if video_frames < 1:
        raise ValueError(f"window_frames must be at least 1, got {video_frames}")
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")


def default_window(backbone, wanted: int, lookahead: bool) -> int:
    """The smallest window of at least ``wanted`` video frames the backbone represents (with an even number of
    latent frames under lookahead): the command line's default, valid on every family."""
    frames = max(1, backbone.latent_frames(backbone.nearest_video_frames(wanted)[1]))
    if lookahead and frames % 2:
        frames += 1
    return backbone.video_frames(frames)


def window_latent_frames(backbone, video_frames: int, lookahead: bool) -> int:
    """The window in latent frames, with the lookahead parity checked in the user's unit."""
    backbone.check_video_frames(video_frames, "window_frames")
    frames = backbone.latent_frames(video_frames)
    if lookahead and frames % 2:
        raise ValueError(f"lookahead denoising needs an even number of latent frames per window (it writes back the "
                         f"second half of each window): window_frames {video_frames} is {frames} on this backbone. "
                         f"Use {backbone.video_frames(frames - 1) if frames > 1 else backbone.video_frames(2)} or "
                         f"{backbone.video_frames(frames + 1)}, or turn lookahead off.")
    return frames


def check_group(frames: int, group: int, lookahead: bool) -> None:
    """Levels held by ``group`` consecutive frames must tile the window (and each half of it under lookahead)."""
    if group < 1:
        raise ValueError(f"frames_per_level must be at least 1, got {group}")
    span = frames // 2 if lookahead else frames
    if span % group:
        raise ValueError(f"frames_per_level {group} does not divide the window's {span} latent frames"
                         f"{' per half (lookahead writes back half a window)' if lookahead else ''}: choose a "
                         f"divisor of {span}, e.g. 1.")


def fifo_plan(schedule: Schedule, frames: int, partitions: int, lookahead: bool = True,
              max_frames: int | None = None, group: int = 1) -> FifoPlan:
    """Labels ts = round(linspace(0, 999, S)) ascending, each held by ``group`` consecutive slots (S = f·n / c
    levels; c = 1 is the paper), f/2 dummy head slots at ts_0 under lookahead, and the windows tail-first as the
    reference runs them: n disjoint ones, or 2n half-overlapping ones. A window still spans f frames, so f / c
    levels, and every level moves one step per iteration: a few-step model (4 levels) drives a long queue."""
    check_group(frames, group, lookahead)
    check_fifo_shape(frames, partitions, lookahead, max_frames, schedule.num_train_timesteps, group)
    ts = schedule.fifo_levels(frames * partitions // group)
    dummies = frames // 2 if lookahead else 0
    labels = (ts[0],) * dummies + tuple(t for t in ts for _ in range(group))
    targets = (ts[0],) * (dummies + group) + tuple(t for t in ts[:-1] for _ in range(group))
    stride = frames // 2 if lookahead else frames
    count = 2 * partitions if lookahead else partitions
    return FifoPlan(frames=frames, partitions=partitions, labels=labels, targets=targets,
                    windows=tuple(r * stride for r in reversed(range(count))), write_from=dummies, head=dummies,
                    group=group)


def check_base_clip(latent: torch.Tensor, plan: FifoPlan, channels: int, downsampling: int) -> None:
    """The base clip must be one f-frame video latent the UNet can take (T2VSampler with f frames)."""
    if latent.dim() != 5:
        raise ValueError(f"base_clip is not a video latent (samples shaped {tuple(latent.shape)}): connect the "
                         "LATENT of a T2VSampler.")
    batch, c, frames, h, w = latent.shape
    if batch != 1:
        raise ValueError(f"base_clip holds {batch} videos; FIFO continues exactly one (batch 1).")
    if c != channels:
        raise ValueError(f"base_clip has {c} latent channels, this backbone's UNet takes {channels}: sample the base "
                         "clip with the same backbone.")
    if frames != plan.frames:
        raise ValueError(f"base_clip has {frames} frames but window_frames is {plan.frames}: sample the base clip "
                         f"with T2VSampler frames = {plan.frames} (and steps = {plan.steps}).")
    if h % downsampling or w % downsampling:
        raise ValueError(f"base_clip latent is {h}×{w}; this UNet needs latent sides that are multiples of "
                         f"{downsampling} (pixel sides multiples of {downsampling} × the VAE's block size).")


def init_queue(schedule: Schedule, plan: FifoPlan, base_clip: torch.Tensor, generator: torch.Generator,
               noise_init: NoiseInit | None = None) -> torch.Tensor:
    """The starting queue ``[1, C, L, h, w]``.

    FIFO's own init (``ddpm_inversion``, the default): every slot is a base frame forward-noised to the
    slot's level with fresh noise — slot i of the S real slots holds base frame max(0, i − (S − f)), so
    the rising part repeats frame 0 and the last f slots hold the whole clip; the lookahead dummies hold
    frame 0 at ts_0. Not DDIM inversion, not evenly spread frames: those are different methods.
    ``gaussian``: every slot plain N(0, I) whatever its level, the ablation that ignores the base clip.
    """
    noise = noise_like((1, base_clip.shape[1], plan.length, *base_clip.shape[3:]), generator).to(base_clip.device)
    if noise_init is not None and noise_init.mode == "gaussian":
        return noise
    dummies = plan.head
    frame_of_slot = [max(0, i - (plan.slots - plan.frames)) for i in range(plan.slots)]
    frames = base_clip[:, :, [0] * dummies + frame_of_slot]
    return schedule.q_sample(frames, torch.tensor([plan.labels]), noise)


def diagonal_step(denoiser: Callable, schedule: Schedule, plan: FifoPlan, queue: torch.Tensor, cond: Conditioning,
                  *, eta: float, noise: torch.Tensor | None, window_batch: int) -> torch.Tensor:
    """One iteration's per-frame DDIM update of every window, all reading ``queue`` as it is now.

    Each window writes back only its slots from ``write_from`` on (the second half under lookahead), so
    every non-dummy slot is written exactly once. ``noise`` is ξ for every slot (eta > 0).
    """
    f, w = plan.frames, plan.write_from
    labels = torch.tensor(plan.labels, device=queue.device)
    targets = torch.tensor(plan.targets, device=queue.device)
    out = queue.clone()
    for first in range(0, len(plan.windows), window_batch):
        starts = plan.windows[first:first + window_batch]
        x = torch.cat([queue[:, :, s:s + f] for s in starts])
        t = torch.stack([labels[s:s + f] for s in starts])  # [windows, f], row b ↔ window b (b-major)
        pred = denoiser(x, t, cond)
        written = [slice(s + w, s + f) for s in starts]
        xi = torch.cat([noise[:, :, sl] for sl in written]) if noise is not None else None
        stepped = schedule.ddim_step(x[:, :, w:], pred[:, :, w:], t[:, w:],
                                     torch.stack([targets[sl] for sl in written]), eta, xi)
        for b, sl in enumerate(written):
            out[:, :, sl] = stepped[b:b + 1]
    return out


def conditioning_at(cond: Conditioning, prompts: PromptSchedule, frame: int) -> Conditioning:
    """The conditioning in force when output frame ``frame`` is emitted: the last schedule entry starting at or
    before it, else ``cond``."""
    active = cond
    for start, entry in sorted(prompts, key=lambda item: item[0]):
        if start <= frame:
            active = entry
    return active


def check_prompt_schedule(prompts: PromptSchedule) -> None:
    starts = [start for start, _ in prompts]
    if any(start < 0 for start in starts):
        raise ValueError(f"prompt start frames must be >= 0, got {sorted(starts)}")
    repeated = sorted({s for s in starts if starts.count(s) > 1})
    if repeated:
        raise ValueError(f"two prompts of the schedule start at frame {repeated[0]}: give each a different "
                         "start_frame.")


def unreached_prompts(starts: Sequence[int], num_frames: int) -> str | None:
    """What to tell the user about schedule entries starting at or after output frame ``num_frames``: they are
    valid but ignored, which the video alone would not show. None when every entry is reached."""
    late = sorted(start for start in starts if start >= num_frames)
    if not late:
        return None
    if len(late) == 1:
        what = f"the prompt starting at frame {late[0]} begins after the last frame ({num_frames - 1}) and is"
    else:
        what = (f"{len(late)} prompts (starting at frames {', '.join(map(str, late))}) begin after the last frame "
                f"({num_frames - 1}) and are")
    return f"prompt schedule: {what} ignored: lower start_frame or raise num_frames."


def check_run(num_frames: int, window_batch: int, eta: float, prompts: PromptSchedule = ()) -> None:
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if window_batch < 1:
        raise ValueError(f"window_batch must be at least 1, got {window_batch}")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be within [0, 1], got {eta}")
    check_prompt_schedule(prompts)


def sample_fifo(denoiser: Callable, schedule: Schedule, plan: FifoPlan, cond: Conditioning,
                base_clip: torch.Tensor, num_frames: int, *, generator: torch.Generator, eta: float = 1.0,
                window_batch: int = 1, noise_init: NoiseInit | None = None, prompts: PromptSchedule = (),
                on_frame: Callable[[int, torch.Tensor], None] | None = None,
                on_step: Callable[[int, int, torch.Tensor], None] | None = None,
                keep: bool = True, queue: torch.Tensor | None = None) -> torch.Tensor | None:
    """FIFO over ``denoiser``: ⌈N / c⌉ + (f·n − f) / c iterations, each emitting the c head frames, the first
    (f·n − f) / c iterations' emissions (warm-up) dropped; c = 1 is the paper's N + S − f.

    ``on_frame(i, latent)`` gets kept output frame i as a ``[1, C, 1, h, w]`` latent on the compute device
    as soon as it is emitted; ``on_step(k, total, queue)`` runs after iteration k's shift. Returns the kept
    latents ``[1, C, N, h, w]`` on the CPU, or None with ``keep`` off (nothing then grows with N).
    ``prompts`` switch the conditioning of the whole queue once the kept-frame counter reaches each start.
    ``queue``: the starting queue when the caller made it already (with :func:`init_queue` and the same generator).
    """
    check_run(num_frames, window_batch, eta, prompts)
    if queue is None:
        queue = init_queue(schedule, plan, base_clip, generator, noise_init)
    device, (channels, *size) = queue.device, (queue.shape[1], *queue.shape[3:])
    kept = torch.empty(1, channels, num_frames, *size) if keep else None
    c = plan.group
    total = -(-num_frames // c) + plan.warmup
    for k in range(total):
        first = (k - plan.warmup) * c
        step_cond = conditioning_at(cond, prompts, max(first, 0))
        xi = noise_like(queue.shape, generator).to(device) if eta > 0 else None
        queue = diagonal_step(denoiser, schedule, plan, queue, step_cond, eta=eta, noise=xi,
                              window_batch=window_batch)
        for j in range(c):  # the c head slots, clean together
            index = first + j
            if 0 <= index < num_frames:
                head = queue[:, :, plan.head + j:plan.head + j + 1]
                if keep:
                    kept[:, :, index] = head[:, :, 0].cpu()
                if on_frame is not None:
                    on_frame(index, head)
        tail = noise_like((1, channels, c, *size), generator).to(device)
        queue = torch.cat([queue[:, :, c:], tail], dim=2)
        if on_step is not None:
            on_step(k + 1, total, queue)
    return kept


def seed_image_tokens(backbone, queue: torch.Tensor) -> ImageTokens:
    """The FIFO image-embedding extension's seeding, as its code does it: queue slot 0 (base frame 0 forward-noised to ts_0) decoded and
    embedded once, for the whole run (with the gray image's tokens for the unconditional branch)."""
    first = backbone.decode(queue[:, :, :1], chunk=1)
    return ImageTokens(*backbone.encode_image_tokens(first))


def check_image_request(backbone, wanted: bool) -> None:
    """Image tokens on a backbone without image cross-attention must fail loudly, not run text-only."""
    if wanted and not backbone.has_image_attention:
        raise ValueError(f"'{backbone.name}' has no image cross-attention, so FIFO cannot be conditioned on an "
                         "image embedding: load an SD1.5 model with an AnimateDiff motion adapter, an IP-Adapter and "
                         "its CLIP image encoder, or turn image seeding off and disconnect image_embeds.")


def with_image_tokens(cond: Conditioning, prompts: PromptSchedule, tokens: ImageTokens, scale: float
                      ) -> tuple[Conditioning, tuple[tuple[int, Conditioning], ...]]:
    """The same image tokens (and scale) on the conditioning and on every prompt of the schedule."""
    return (cond.with_image(tokens.tokens, tokens.uncond, scale),
            tuple((start, c.with_image(tokens.tokens, tokens.uncond, scale)) for start, c in prompts))


NAME_BYTES = 255
"""Longest file or folder name (in UTF-8 bytes) on the usual file systems (ext4, NTFS, APFS)."""
FOLDER_NUMBER = "_{:05d}"


def output_base(root: Path, prefix: str) -> Path:
    """``root/prefix``, the base of the numbered folders :func:`stream_folder` makes, once ``prefix`` is known to
    name a folder inside ``root`` that can be made: checked before a run starts (FIFOQueueWithImageEmbed's
    validation), so a bad prefix is not found only after the base clip was sampled."""
    prefix = str(prefix)
    where = "(such as fifo/frames)"
    if "\x00" in prefix:
        raise ValueError(f"filename_prefix {prefix!r} contains a NUL character (\\x00), which no file name can hold: "
                         f"give a plain relative path {where}.")
    path = Path(prefix)
    if path.anchor or ".." in path.parts or not path.name:
        raise ValueError(f"filename_prefix '{prefix}' must name a folder inside the output folder {where}: a "
                         "relative path, without '..'.")
    for index, part in enumerate(path.parts):
        suffix = len(FOLDER_NUMBER.format(1)) if index == len(path.parts) - 1 else 0
        if len(part.encode("utf-8")) + suffix > NAME_BYTES:
            raise ValueError(f"filename_prefix: the name '{part[:40]}…' is {len(part.encode('utf-8'))} bytes long; "
                             f"file systems take at most {NAME_BYTES} bytes per name"
                             f"{f' (the last part gets {suffix} more: _00001)' if suffix else ''}. Shorten it.")
    base = Path(root) / path
    for folder in [Path(root), *reversed(list(base.parents)[:len(path.parts) - 1])]:
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"filename_prefix '{prefix}': {folder} is a file, not a folder, so the frames cannot "
                             "be written under it. Choose another filename_prefix.")
    return base


def stream_folder(root: Path, prefix: str) -> Path:
    """A new folder ``root/prefix_00001`` (the next free number) for the frames of one run."""
    base = output_base(root, prefix)
    number = 1
    while (base.parent / (base.name + FOLDER_NUMBER.format(number))).exists():
        number += 1
    folder = base.parent / (base.name + FOLDER_NUMBER.format(number))
    folder.mkdir(parents=True)
    return folder


def write_png(frame: torch.Tensor, path: Path) -> None:
    from PIL import Image

    from ..video_io import to_uint8
    Image.fromarray(to_uint8(frame)).save(path)


def fifo_video(backbone, denoiser: Callable, plan: FifoPlan, cond: Conditioning, base_clip: torch.Tensor,
               num_frames: int, *, generator: torch.Generator, eta: float = 1.0, window_batch: int = 1,
               noise_init: NoiseInit | None = None, prompts: PromptSchedule = (), stream_to: Path | None = None,
               keep_frames: bool = True, seed_image_scale: float | None = None,
               on_frame: Callable[[int, torch.Tensor], None] | None = None,
               on_step: Callable[[int, int, torch.Tensor], None] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """FIFO on a backbone with streaming output: each kept head frame (a latent frame) is decoded as it is
    emitted, continuing one video, moved to the CPU, optionally written to ``stream_to`` as
    ``frame_000000.png`` … (an interrupted run keeps what it made), and each of its video frames handed to
    ``on_frame(i, image [H, W, 3])``. ``num_frames`` counts latent frames.

    Returns (frames ``[video_frames(N), H, W, 3]``, latents ``[1, C, N, h, w]``) on the CPU. With ``keep_frames`` off only
    the last frame and its latent come back, so memory does not grow with N at all (stream them to disk).
    ``seed_image_scale``: condition the whole run on the image tokens of the starting queue's slot 0, at this
    scale (:func:`seed_image_tokens`).
    """
    frames: torch.Tensor | None = None
    last: tuple[torch.Tensor, torch.Tensor] | None = None
    decode = backbone.stream_decoder()  # one continuous video: a causal VAE keeps its state between frames
    written = 0

    def emitted(index: int, latent: torch.Tensor) -> None:
        nonlocal frames, last, written
        images = decode(latent)  # the video frames of this latent frame (4 after the first on Wan, else 1)
        if keep_frames:
            if frames is None:  # filled in place: no copy of the whole video
                frames = torch.empty(backbone.video_frames(num_frames), *images.shape[1:])
            frames[written:written + images.shape[0]] = images
        else:
            last = images[-1:], latent.cpu()
        for image in images:
            if stream_to is not None:
                write_png(image, Path(stream_to) / f"frame_{written:06d}.png")
            if on_frame is not None:
                on_frame(written, image)
            written += 1

    queue = init_queue(backbone.schedule, plan, base_clip, generator, noise_init)
    if seed_image_scale is not None:
        cond, prompts = with_image_tokens(cond, prompts, seed_image_tokens(backbone, queue), seed_image_scale)
    latents = sample_fifo(denoiser, backbone.schedule, plan, cond, base_clip, num_frames, generator=generator,
                          eta=eta, window_batch=window_batch, noise_init=noise_init, prompts=prompts,
                          on_frame=emitted, on_step=on_step, keep=keep_frames, queue=queue)
    return (frames, latents) if keep_frames else last


@dataclass(frozen=True)
class BaseClip:
    """The base clip a FIFO run needs: ``frames`` video frames sampled in ``steps`` steps on FIFO's grid."""

    frames: int
    steps: int
    warmup: int
    """Iterations whose emissions are dropped (near-copies of the base clip's first frame)."""
    windows: int
    """Model-call windows per iteration."""
    grid: str = "fifo"


def base_clip_for(backbone, window_frames: int, partitions: int, lookahead: bool,
                  frames_per_level: int = 1) -> BaseClip:
    """How to sample the base clip of a FIFO run with this window (video frames), partitions and levels."""
    check_window_request(window_frames, partitions)
    window = window_latent_frames(backbone, window_frames, lookahead)
    plan = fifo_plan(backbone.schedule, window, partitions, lookahead, backbone.max_frames, frames_per_level)
    return BaseClip(frames=window_frames, steps=plan.steps, warmup=plan.warmup, windows=len(plan.windows))


KEPT_COPIES = 1
"""The kept frames are filled in place into one float32 video (``fifo_video``): no second copy."""


def check_kept_frames(backbone, latent_shape, num_frames: int, keep_frames: bool) -> None:
    """Kept frames that cannot fit in the available RAM are refused before the run, with the way out."""
    available = available_memory()
    if not keep_frames or available is None:
        return
    side = backbone.memory_profile().pixel_side
    _, _, _, h, w = (int(n) for n in latent_shape)
    need = KEPT_COPIES * num_frames * h * side * w * side * 3 * 4
    if need > available:
        raise ValueError(f"num_frames {num_frames} at {w * side}×{h * side} with keep_frames on needs "
                         f"{need / 2 ** 30:.1f} GB of RAM for the returned frames (float32); "
                         f"{available / 2 ** 30:.1f} GB is available. Turn stream_to_disk on and keep_frames off "
                         "(the frames go to disk as they are made and memory stays flat), or lower num_frames.")


def long_video(backbone, cond: Conditioning, base_clip: torch.Tensor, *, num_frames: int, window_frames: int,
               partitions: int, lookahead: bool = True, frames_per_level: int = 1, eta: float = 1.0,
               guidance: float,
               guidance_2: float | None = None, generator: torch.Generator, window_batch: int = 1,
               noise_init: NoiseInit | None = None, image_tokens: ImageTokens | None = None,
               seed_image_from_base_clip: bool = False, image_scale: float = 1.0,
               prompt_schedule: Sequence[tuple[int, Conditioning]] = (), stream_to: Path | None = None,
               keep_frames: bool = True, host: Host = Host(),
               on_step: Callable[[int, int], None] | None = None,
               on_frame: Callable[[int, torch.Tensor], None] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """FIFO-Diffusion's entry point (FIFOQueueWithImageEmbed and the command line), in video frames: ``num_frames``
    frames from the latent ``base_clip`` (``base_clip_for``'s clip), a window of ``window_frames``, the prompt
    schedule's starts in output frames; ``frames_per_level`` latent frames share each level (the queue then needs
    f·n / c levels: a few-step distilled model drives it). Every check is made before any work. Returns (frames, latents) on
    ``host.out_device`` (only the last ones with ``keep_frames`` off); ``on_step(k, total)`` before the first
    iteration (k = 0) and after each,
    ``on_frame(i, image)`` for each video frame as it is decoded."""
    check_window_request(window_frames, partitions)
    window = window_latent_frames(backbone, window_frames, lookahead)
    plan = fifo_plan(backbone.schedule, window, partitions, lookahead, backbone.max_frames, frames_per_level)
    check_base_clip(base_clip, plan, backbone.channels, backbone.latent_multiple)
    backbone.check_video_frames(num_frames, "num_frames")
    latent_count = backbone.latent_frames(num_frames)
    prompts = tuple((backbone.latent_index(start), c) for start, c in prompt_schedule)
    check_run(num_frames, window_batch, eta, prompts)
    carried = cond.image is not None
    check_image_request(backbone, seed_image_from_base_clip or image_tokens is not None or carried
                        or any(c.image is not None for _, c in prompts))
    if seed_image_from_base_clip and (image_tokens is not None or carried):
        raise ValueError("seed_image_from_base_clip takes the image tokens from the base clip, but image tokens "
                         "are also given (image_embeds, or a conditioning from T2VConditioningAddImage): turn "
                         "seeding off for image-to-video, or disconnect them for seeding.")
    check_kept_frames(backbone, base_clip.shape, num_frames, keep_frames)
    tokens = image_tokens if image_tokens is not None else (
        ImageTokens(cond.image, cond.image_uncond) if carried else None)
    if tokens is not None:
        cond, prompts = with_image_tokens(cond, prompts, tokens, image_scale)
    base = base_clip.to(backbone.device, torch.float32)
    if on_step is not None:
        # the total, before the first iteration's frames can come out
        on_step(0, -(-latent_count // plan.group) + plan.warmup)
    frames, latents = fifo_video(
        backbone, host.denoiser(backbone, guidance, guidance_2), plan, cond, base, latent_count,
        generator=generator, eta=eta, window_batch=window_batch, noise_init=noise_init, prompts=prompts,
        stream_to=stream_to, keep_frames=keep_frames,
        seed_image_scale=image_scale if seed_image_from_base_clip else None,
        on_step=None if on_step is None else lambda k, total, queue: on_step(k, total), on_frame=on_frame)
    return frames.to(host.out_device), latents.to(host.out_device)
