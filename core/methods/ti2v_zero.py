"""TI2V-Zero (Ni et al., CVPR 2024): image-to-video from a text-to-video model.

A queue of K = F − 1 frames (K copies of the image at first) conditions an F-frame clip whose last slot
becomes the next frame: at every DDIM step the K conditioning slots are overwritten with the queue's
latents noised afresh to that step's level, so the model, which only ever denoises coherent clips,
continues the queue in the new slot. The new frame joins the queue, the oldest frame leaves (the
slide), and the video grows one frame per outer iteration, to any length at constant memory.

Faithful to the paper and its released code:
- DDIM grid with leading spacing and offset 1 on every backbone (S = 10 → 901 … 1), final alpha ᾱ_0; where
  the reference's grid clamps its first point to 999 (whenever 1000 // S divides 999: S = 3, 9, 27, 36, …) that
  step's DDIM update still lands on 999 − 1000 // S while the queue and the resampling use the next grid point
  (S = 3: 666 and 667), as its loop does;
- DDPM inversion (``NoiseInit("ddpm_inversion")``): the new slot starts as the last queue latent
  forward-noised to τ_1 with its own noise; resampling (``Resample(R)``): R extra DDIM-and-renoise
  rounds per step, including the last, all F frames pushed back; two fresh noisings of the queue per
  step;
- the queue holds *pixels*; the final sample of the new slot (not x̂0) is decoded, and frame 0 of the
  video is the input pixels themselves.

Ours:
- **encode cache**: the reference re-encodes all K queue frames every iteration; encoding (posterior
  mean, one frame per call) is deterministic, so we keep each frame's latent while it is in the queue:
  bit-identical latents, one VAE encode per new frame instead of K;
- batched classifier-free guidance (the Denoiser): S·(R+1) UNet calls per frame instead of 2·S·(R+1);
- **video prediction**: several given frames seed the queue (the last K; fewer than K: the first is
  repeated in front); the reference code has only the single-image case;
- **latent queue** (off by default, a deviation): the new frame's final latent joins the queue directly,
  skipping the decode → encode round trip; faster, and not what the paper evaluated;
- decoded frames are clamped to the displayable range before they re-enter the queue (the reference
  re-encodes the unclamped decode; a well-trained VAE rarely leaves the range).
"""
from __future__ import annotations

import logging
from typing import Callable

import torch

from .anchor import check_image, encode_frames
from ..schedule import Schedule
from .strategies import NoiseInit, Resample
from .t2v import noise_like
from ..validation import check_frames, check_steps
from .host import Host

log = logging.getLogger(__name__)


def ti2v_grid(schedule: Schedule, steps: int) -> list[tuple]:
    """(t, t') per step of the method's own grid, whatever the backbone's own spacing (see
    :meth:`Schedule.ti2v_pairs`: the reference's grid, which has one extra step when S does not divide 1000)."""
    return schedule.ti2v_pairs(steps)


def check_settings(num_frames: int, steps: int, model_frames: int) -> None:
    if num_frames < 1:
        raise ValueError(f"num_frames (new frames to generate) must be at least 1, got {num_frames}")
    check_steps(steps)
    if model_frames < 2:
        raise ValueError(f"model_frames must be at least 2 (one conditioning slot plus the new frame), "
                         f"got {model_frames}")


def step_levels(pairs: list[tuple]) -> list[tuple]:
    """(t, DDIM target, next level) per step of the grid ``pairs``: the reference's loop steps DDIM to t's own
    target but noises the queue at, and pushes back from, the next grid point (the target after the last step).
    The two differ only where its grid clamps the first point to 999 (S = 3: 999 steps to 666, the next point is
    667); on every other grid, and on a flow one, the next point is the target."""
    nexts = [t for t, _ in pairs[1:]] + [pairs[-1][1]]
    return [(t, t_step, t_next) for (t, t_step), t_next in zip(pairs, nexts)]


def _denoise_clip(denoiser, schedule: Schedule, cond, z: torch.Tensor, queue: torch.Tensor | None,
                  pairs: list[tuple[int, int]], rounds: int, draw: Callable, tick: Callable) -> torch.Tensor:
    """Steps 4–5 of the spec for one new frame, with t' the next level of :func:`step_levels`: per step, the
    queue ``[B, C, K, h, w]`` (clean latents) noised afresh to t and t' fills the first K slots; R rounds of
    DDIM from t, queue back at t', all F frames pushed back from t' to t with fresh noise; then the final DDIM
    from t. ``queue`` None: never replaced. At a level with no signal left (a flow model's σ = 1) pushing back
    to t would discard the step, so no resampling round runs there (:func:`rounds_at`)."""
    slots = 0 if queue is None else queue.shape[2]
    for t, t_step, t_next in step_levels(pairs):
        here = rounds_at(schedule, t, rounds)
        if queue is not None:
            z = torch.cat([schedule.q_sample(queue, t, draw(queue.shape)), z[:, :, slots:]], dim=2)
            queue_next = schedule.q_sample(queue, t_next, draw(queue.shape)) if here else None
        for r in range(here + 1):
            z = schedule.ddim_step(z, denoiser(z, t, cond), t, t_step)
            tick()
            if r == here:
                break
            if queue is not None:
                z = torch.cat([queue_next, z[:, :, slots:]], dim=2)
            z = schedule.renoise(z, t_next, t, draw(z.shape))
    return z


def rounds_at(schedule: Schedule, t, rounds: int) -> int:
    """Resampling rounds at level ``t``: none where no signal is left to keep (the round would be pure noise)."""
    return rounds if schedule.has_signal(t) else 0


def calls_per_frame(schedule: Schedule, pairs, rounds: int) -> int:
    """Model calls per new (latent) frame: one per step plus its resampling rounds."""
    return sum(1 + rounds_at(schedule, t, rounds) for t, _ in pairs)


def _next_latent(denoiser, schedule: Schedule, cond, c: torch.Tensor | None, like: torch.Tensor, model_frames: int,
                 pairs, rounds: int, noise_init: NoiseInit, draw: Callable, tick: Callable) -> torch.Tensor:
    """Steps 2–5 of the spec for one new frame after the queue latents ``c`` ``[B, C, K, h, w]`` (``like`` gives
    the shape; ``c`` None: the ablation that never writes the queue into the clip): the new slot's start noise
    (DDPM inversion of the last queue frame, or plain), then the conditioned denoising; returns the new slot."""
    slots = model_frames - 1
    z = draw((like.shape[0], like.shape[1], model_frames, *like.shape[3:]))
    if noise_init.mode == "ddpm_inversion":
        z = torch.cat([z[:, :, :slots], schedule.q_sample(like[:, :, -1:], pairs[0][0], z[:, :, slots:])], dim=2)
    return _denoise_clip(denoiser, schedule, cond, z, c, pairs, rounds, draw, tick)[:, :, slots:]


def sample_ti2v_zero(denoiser: Callable, schedule: Schedule, cond, frames: torch.Tensor, latents: torch.Tensor,
                     num_frames: int, steps: int, *, model_frames: int,
                     encode: Callable[[torch.Tensor], torch.Tensor],
                     decode: Callable[[torch.Tensor], torch.Tensor],
                     generator: torch.Generator | None = None,
                     noise_sampler: Callable[[tuple], torch.Tensor] | None = None,
                     noise_init: NoiseInit = NoiseInit(), resample: Resample = Resample(),
                     latent_queue: bool = False, encode_cache: bool = True, condition_on_queue: bool = True,
                     on_step: Callable[[int, int], None] | None = None,
                     on_frame: Callable[[int, torch.Tensor], None] | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_frames`` new frames after the given ``frames``; returns (IMAGE video, its latents).

    ``frames`` IMAGE ``[m, H, W, 3]`` (0..1) and ``latents`` ``[1, C, m, h, w]`` (theirs, on the compute
    device) are the anchor; the video is ``[m + num_frames, H, W, 3]``, allocated once on ``frames``'
    device, with the given frames copied bit for bit at the start. ``encode`` maps IMAGE frames to
    latents (one frame per call), ``decode`` maps a ``[1, C, 1, h, w]`` latent to an IMAGE frame.
    ``noise_sampler(shape)`` draws every noise (default: CPU normal noise from ``generator``).
    ``encode_cache`` False re-encodes the whole pixel queue every iteration, as the reference does;
    ``condition_on_queue`` False never writes the queue into the clip (ablation: plain T2V DDIM).
    ``on_step(i, total)`` runs after each DDIM evaluation, ``on_frame(index, frame)`` after each new frame.
    """
    check_image(frames, "anchor")
    check_settings(num_frames, steps, model_frames)
    given, slots = frames.shape[0], model_frames - 1
    if latents.dim() != 5 or latents.shape[2] != given:
        raise ValueError(f"latents {tuple(latents.shape)} do not match the {given} given frame(s)")
    if noise_sampler is None:
        if generator is None:
            raise ValueError("sample_ti2v_zero needs a generator (seeded) or a noise_sampler")
        noise_sampler = lambda shape: noise_like(shape, generator)  # noqa: E731
    device = latents.device

    def draw(shape) -> torch.Tensor:
        return noise_sampler(tuple(shape)).to(device)

    pairs = ti2v_grid(schedule, steps)
    rounds = resample.rounds
    total_evals = num_frames * calls_per_frame(schedule, pairs, rounds)
    video = torch.empty((given + num_frames, *frames.shape[1:]), dtype=frames.dtype, device=frames.device)
    video[:given] = frames
    out = torch.empty((*latents.shape[:2], given + num_frames, *latents.shape[3:]), dtype=latents.dtype)
    out[:, :, :given] = latents.cpu()

    # The queue is a window of indices into the video; fewer given frames than slots repeat the first.
    queue = [0] * max(0, slots - given) + list(range(max(0, given - slots), given))
    cache = {i: latents[:, :, i:i + 1] for i in set(queue)}

    def queue_latents() -> torch.Tensor:
        if not (encode_cache or latent_queue):
            return torch.cat([encode(video[i:i + 1]).to(device) for i in queue], dim=2)
        for i in set(cache) - set(queue):
            del cache[i]  # slid out: nothing is kept for frames that left the queue
        for i in queue:
            if i not in cache:
                cache[i] = encode(video[i:i + 1]).to(device)
        return torch.cat([cache[i] for i in queue], dim=2)

    evals = 0

    def tick():
        nonlocal evals
        evals += 1
        if on_step is not None:
            on_step(evals, total_evals)

    for n in range(num_frames):
        c = queue_latents()
        new = _next_latent(denoiser, schedule, cond, c if condition_on_queue else None, c, model_frames, pairs, rounds,
                           noise_init, draw, tick)
        index = given + n
        video[index] = decode(new)[0].to(video.device)
        out[:, :, index] = new[:, :, 0].cpu()
        queue = queue[1:] + [index]
        if latent_queue:
            cache[index] = new
        if on_frame is not None:
            on_frame(index, video[index])
    return video, out


def sample_ti2v_zero_latents(denoiser: Callable, schedule: Schedule, cond, queue: torch.Tensor, num_latents: int,
                             steps: int, *, generator: torch.Generator, noise_init: NoiseInit = NoiseInit(),
                             resample: Resample = Resample(),
                             on_step: Callable[[int, int], None] | None = None,
                             on_latent: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """TI2V-Zero with the queue kept as latents, for a backbone whose causal VAE packs several video frames into
    each latent frame (Wan): ``num_latents`` new latent frames after the K queue latents ``[1, C, K, h, w]``.

    The slide keeps latents: re-encoding a sliding pixel window with a causal VAE would turn its oldest chunk into
    a first-frame latent. Each new latent joins the queue and ``on_latent(n, latent)`` gets it; returns the new
    latents ``[1, C, N, h, w]`` on the CPU.
    """
    pairs = ti2v_grid(schedule, steps)
    total, evals = num_latents * calls_per_frame(schedule, pairs, resample.rounds), 0

    def draw(shape) -> torch.Tensor:
        return noise_like(tuple(shape), generator).to(queue.device)

    def tick():
        nonlocal evals
        evals += 1
        if on_step is not None:
            on_step(evals, total)

    out = torch.empty((*queue.shape[:2], num_latents, *queue.shape[3:]), dtype=queue.dtype)
    for n in range(num_latents):
        new = _next_latent(denoiser, schedule, cond, queue, queue, queue.shape[2] + 1, pairs, resample.rounds,
                           noise_init, draw, tick)
        out[:, :, n] = new[:, :, 0].cpu()
        queue = torch.cat([queue[:, :, 1:], new], dim=2)
        if on_latent is not None:
            on_latent(n, new)
    return out


def _on_causal_backbone(backbone, denoiser, cond, anchor, num_frames: int, steps: int, *, model_frames: int,
                        generator, noise_init, resample, on_step, on_frame, out_device):
    """TI2V-Zero where each latent frame after the first is several video frames (Wan): the image is latent frame
    0, the queue is K latent frames of a still (4K − 3)-frame clip of it, encoded once, and every new latent frame
    is decoded as it comes, continuing one video (4 new video frames each)."""
    per_latent = backbone.frames_per_latent
    if anchor.frames != 1:
        raise ValueError(f"{backbone.name}: TI2V-Zero on this backbone starts from one image (its first latent frame); "
                         f"{anchor.frames} were given. Video prediction from several frames is not supported on it yet.")
    if num_frames % per_latent:
        raise ValueError(f"num_frames {num_frames}: on {backbone.name} every new latent frame is {per_latent} video "
                         f"frames, so num_frames must be a multiple of {per_latent} (e.g. "
                         f"{max(per_latent, num_frames - num_frames % per_latent)}).")
    slots = backbone.latent_frames(model_frames) - 1
    if slots < 1:
        raise ValueError(f"model_frames {model_frames} is one latent frame: use at least "
                         f"{backbone.video_frames(2)} (a queue slot plus the new frame).")
    first = anchor.latents.to(backbone.device)
    queue = backbone.still_video(first, slots)
    decode = backbone.stream_decoder(out_device)
    decode(first)  # the stream starts at the image: its causal state leads into the first new latent frame
    count = num_frames // per_latent
    video = torch.empty((1 + num_frames, *anchor.image.shape[1:]), device=out_device)
    video[:1] = anchor.image.to(out_device)  # frame 0 is the input pixels themselves

    def on_latent(n: int, latent: torch.Tensor) -> None:
        images = decode(latent)
        start = 1 + n * per_latent
        video[start:start + images.shape[0]] = images
        for j in range(images.shape[0]):
            if on_frame is not None:
                on_frame(start + j, video[start + j])

    new = sample_ti2v_zero_latents(denoiser, backbone.schedule, cond, queue, count, steps, generator=generator,
                                   noise_init=noise_init, resample=resample, on_step=on_step, on_latent=on_latent)
    return video, torch.cat([anchor.latents.cpu(), new], dim=2)


def model_calls(backbone, num_frames: int, steps: int, rounds: int = 0) -> int:
    """Model calls a run of ``num_frames`` new video frames makes (what a progress bar counts)."""
    per_frame = calls_per_frame(backbone.schedule, ti2v_grid(backbone.schedule, steps), rounds)
    return max(1, num_frames // backbone.frames_per_latent) * per_frame


def image_to_video(backbone, cond, anchor, *, num_frames: int, model_frames: int, steps: int, guidance: float,
                   guidance_2: float | None = None, generator: torch.Generator, noise_init: NoiseInit = NoiseInit(),
                   resample: Resample = Resample(), latent_queue: bool = False, host: Host = Host(),
                   on_step: Callable[[int, int], None] | None = None,
                   on_frame: Callable[[int, torch.Tensor], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """TI2V-Zero's entry point (RepeatAndSlideSampler and the command line): ``num_frames`` new video frames
    after the ``anchor``, ``model_frames`` video frames per model call, every check made before any work.
    Returns (the video: the anchor's frames then the new ones, on ``host.out_device``; its latents on the CPU)."""
    check_settings(num_frames, steps, model_frames)
    check_frames(backbone, model_frames, "model_frames")
    anchor.require(backbone)
    grid = ti2v_grid(backbone.schedule, steps)
    if len(grid) != steps:
        log.info("TI2V-Zero: %d steps run as the reference's %d-step grid (%s): 1000 is not a multiple of %d",
                 steps, len(grid), ", ".join(str(t) for t, _ in grid), steps)
    denoiser = host.denoiser(backbone, guidance, guidance_2)
    if backbone.causal_vae:
        return _on_causal_backbone(backbone, denoiser, cond, anchor, num_frames, steps, model_frames=model_frames,
                                   generator=generator, noise_init=noise_init, resample=resample, on_step=on_step,
                                   on_frame=on_frame, out_device=host.out_device)
    out_device = host.out_device
    return sample_ti2v_zero(
        denoiser, backbone.schedule, cond, anchor.image.to(out_device), anchor.latents.to(backbone.device),
        num_frames, steps, model_frames=model_frames, generator=generator, noise_init=noise_init,
        resample=resample, latent_queue=latent_queue, on_step=on_step, on_frame=on_frame,
        encode=lambda images: encode_frames(backbone, images),
        decode=lambda z: backbone.decode(z, chunk=1, out_device=out_device))
