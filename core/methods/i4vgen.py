"""I4VGen (arXiv 2406.02230): an image as a stepping stone for text-to-video.

Three stages, each a plain function over a Denoiser (or a mock):
1. generation-selection — N single-frame candidates sampled with the *video* backbone itself on 1-frame
   clips, scored by a reward model; the best one, as its own latent, becomes a static video;
2. NI-VSDS — the static video is pulled towards what the video model would denoise it to, with one
   fixed noise sample down the sampler's own timesteps (closed form, no autograd);
3. regeneration — plain SDEdit-style sampling from the result with fresh noise
   (:func:`t2v.text_to_video` from a latent with a strength; nothing I4VGen-specific is needed there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch

from ..interface import static_video
from ..validation import check_frames, check_latent_frames, check_size, check_steps
from .anchor import check_image
from .host import Host
from .t2v import noise_like, sample_t2v

DEFAULT_P = 0.6
"""NI-VSDS extent with the reference code's meaning: K = int(S·p) + 1 iterations. (The paper's "0.4" is
the timestep 0.4·T where the same run stops, not a value for this knob.)"""
DEFAULT_STEP_SIZES = (10.0, 10.0, 10.0, 1.0)
"""The AnimateDiff reference code's step sizes; the last one repeats. With the paper's α = 1 the first
iterations barely move the latent."""
MAX_STEP_SIZE = 1000.0
"""Largest step size α_k accepted: 100 times the reference's largest (10), room for experiments. Each iteration
moves the latent (about unit scale) by up to α_k times a unit-scale noise difference; far larger steps throw it
out of the range any VAE decodes, then out of fp16's (65504), and 1e308 overflows to inf: a blank video that
still looks like a successful run."""


# --- stage 1: generation-selection ---------------------------------------------------------------
@dataclass(frozen=True)
class AnchorSelection:
    anchor: torch.Tensor  # [1, C, F, h, w]: the chosen candidate's latent repeated over F frames
    images: torch.Tensor  # [N, H, W, 3] in 0..1, on the CPU: every candidate
    scores: list[float]
    index: int


def candidate_noise(video_shape: Sequence[int], count: int, generator: torch.Generator) -> torch.Tensor:
    """Noise ``[count, C, 1, h, w]`` for the candidates, cut from video-shaped draws ``[1, C, F, h, w]``.

    Candidate i is frame i mod F of the seed's (i // F + 1)-th video draw, so with N = F the candidates
    start from exactly the noise the baseline video would use for the same seed.
    """
    if count < 1:
        raise ValueError(f"the number of candidates must be at least 1, got {count}")
    frames = video_shape[2]
    draws = [noise_like(video_shape, generator) for _ in range(math.ceil(count / frames))]
    return torch.cat(draws, dim=2)[:, :, :count].permute(2, 1, 0, 3, 4)


def first_argmax(scores: Sequence[float]) -> int:
    """Index of the best score; the first one on ties (deterministic, whatever the backend)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def _scored(images: torch.Tensor, score: Callable[[torch.Tensor], Sequence[float]]) -> tuple[list[float], int]:
    scores = [float(s) for s in score(images)]
    if len(scores) != images.shape[0]:
        raise ValueError(f"the reward model returned {len(scores)} scores for {images.shape[0]} candidates")
    return scores, first_argmax(scores)


def sample_candidates(denoiser: Callable, schedule, cond, noise: torch.Tensor, steps: int, *,
                      generator: torch.Generator, batch: int,
                      on_step: Callable[[int, int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Candidate latents ``[N, C, 1, h, w]`` from ``noise`` of that shape: the video denoiser run on 1-frame
    clips over the sampler's own grid, ``batch`` candidates per UNet call (S calls per batch)."""
    chunks = math.ceil(noise.shape[0] / batch)
    latents = []
    for c in range(chunks):
        def progress(i, total, x, done=c * steps):
            if on_step is not None:
                on_step(done + i, chunks * steps, x)

        latents.append(sample_t2v(denoiser, schedule, cond, noise[c * batch:(c + 1) * batch], steps,
                                  generator=generator, on_step=progress))
    return torch.cat(latents)


def generate_and_select(denoiser: Callable, schedule, cond, noise: torch.Tensor, steps: int, frames: int, *,
                        decode: Callable[[torch.Tensor], torch.Tensor],
                        score: Callable[[torch.Tensor], Sequence[float]], generator: torch.Generator,
                        batch: int | None = None, still: Callable = static_video,
                        on_step: Callable[[int, int, torch.Tensor], None] | None = None) -> AnchorSelection:
    """Generation-selection: sample the candidates from ``noise`` (see :func:`candidate_noise`), decode,
    score, and repeat the best candidate's *own latent* over F frames (no decode/encode round trip).

    Candidates run ``batch`` at a time (default F): one UNet call then never carries more single frames
    than a call of the plain F-frame sampler, so memory stays that of plain sampling, and N = F costs
    exactly S calls. ``decode``: latents ``[n, C, 1, h, w]`` → IMAGE ``[n, H, W, 3]``; ``score``: IMAGE →
    one number per image. ``still(latent, F)`` makes the static video (the backbone's ``still_video``: a causal
    VAE's still clip is not its first latent repeated).
    """
    candidates = sample_candidates(denoiser, schedule, cond, noise, steps, generator=generator,
                                   batch=batch or frames, on_step=on_step)
    images = decode(candidates)
    scores, index = _scored(images, score)
    return AnchorSelection(anchor=still(candidates[index:index + 1], frames), images=images, scores=scores,
                           index=index)


def encode_images(backbone, images: torch.Tensor) -> torch.Tensor:
    """IMAGE ``[N, H, W, 3]`` (0..1) → latents ``[N, C, 1, h, w]`` with the video VAE (posterior mean)."""
    pixels = images.permute(0, 3, 1, 2).float() * 2 - 1
    return backbone.encode(pixels).permute(2, 1, 0, 3, 4)


def select_from_images(images: torch.Tensor, frames: int, *, encode: Callable[[torch.Tensor], torch.Tensor],
                       score: Callable[[torch.Tensor], Sequence[float]], still: Callable = static_video
                       ) -> AnchorSelection:
    """Generation-selection over given candidate images (from any checkpoint, or one user image): score
    them and encode only the best one with the video VAE (see :func:`encode_images`)."""
    if images.shape[0] < 1:
        raise ValueError("no candidate images were given")
    scores, index = _scored(images, score)
    return AnchorSelection(anchor=still(encode(images[index:index + 1]), frames), images=images,
                           scores=scores, index=index)


def format_scores(selection: AnchorSelection) -> str:
    """One line per candidate, the anchor marked: what the user reads to judge the reward model."""
    return "\n".join(f"candidate {i}: {s:.4f}" + ("  <- anchor" if i == selection.index else "")
                     for i, s in enumerate(selection.scores))


# --- stage 2a: NI-VSDS ----------------------------------------------------------------------------
def nivsds_iterations(steps: int, p: float) -> int:
    """K = int(S·p) + 1 (the reference code's meaning of p), at most the S timesteps of the grid."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"NI-VSDS p must be within [0, 1] (the reference default is {DEFAULT_P}); got {p}")
    return min(int(steps * p) + 1, steps)


def parse_step_sizes(text: str) -> tuple[float, ...]:
    """"10, 10, 10, 1" → (10.0, 10.0, 10.0, 1.0); the last value repeats for later iterations."""
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if not any(parts):
        raise ValueError("step_sizes is empty: give comma-separated numbers, e.g. '10,10,10,1' (the last repeats)")
    sizes = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"step_sizes: '{part}' is not a number; give comma-separated numbers, e.g. "
                             "'10,10,10,1'") from None
        if not math.isfinite(value) or not 0 <= value <= MAX_STEP_SIZE:
            raise ValueError(f"step_sizes: {part} must be a finite number >= 0 and at most {MAX_STEP_SIZE:g} (the "
                             "reference uses 10; larger steps throw the latent out of the range the VAE decodes)")
        sizes.append(value)
    return tuple(sizes)


def ni_vsds(denoiser: Callable, schedule, cond, latent: torch.Tensor, noise: torch.Tensor, steps: int,
            iterations: int, step_sizes: Sequence[float] = DEFAULT_STEP_SIZES,
            on_step: Callable[[int, int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Noise-invariant video score distillation of a (static) video latent ``[B, C, F, h, w]``.

    Iteration k visits ts[k] of the S-step grid (one descending pass), noises the current latent with the
    *same* ``noise`` ε every time, and applies the closed-form update
    x ← x − α_k·s_t²·(ε̂ − ε) with ε̂ the guided prediction (:meth:`Schedule.score_distillation_step`).
    ``iterations`` = 0 returns the latent unchanged (the "w/o NI-VSDS" ablation). ``on_step(k, K, x)``.
    """
    if not 0 <= iterations <= steps:
        raise ValueError(f"NI-VSDS iterations must be within [0, {steps}] (the grid's length), got {iterations}")
    if not step_sizes:
        raise ValueError("NI-VSDS needs at least one step size")
    if noise.shape != latent.shape:
        raise ValueError(f"NI-VSDS noise {tuple(noise.shape)} must have the latent's shape {tuple(latent.shape)}")
    x = latent.clone()
    levels = schedule.sampling_timesteps(steps)[:iterations]
    for k, t in enumerate(levels):
        noised = schedule.q_sample(x, t, noise)
        eps = schedule.split(noised, denoiser(noised, t, cond), t)[1]
        x = schedule.score_distillation_step(x, eps, noise, t, step_sizes[min(k, len(step_sizes) - 1)])
        if on_step is not None:
            on_step(k + 1, len(levels), x)
    return x


def select_anchor(backbone, cond, score: Callable[[torch.Tensor], Sequence[float]], *, frames: int, width: int,
                  height: int, steps: int, guidance: float, guidance_2: float | None = None,
                  num_candidates: int = 0, generator: torch.Generator, candidates: torch.Tensor | None = None,
                  host: Host = Host(), on_step: Callable[[int, int, torch.Tensor], None] | None = None
                  ) -> AnchorSelection:
    """Stage 1's entry point (RewardSelectAnchor and the command line): the anchor of a ``frames``-frame (video
    frames) ``width`` × ``height`` video, as the backbone's still video of the best-scored candidate. Candidates
    are sampled (``num_candidates``, 0 = one per latent frame, from the noise of the video this generator would
    give) or, when ``candidates`` IMAGE are given, scored as they are and the best encoded."""
    check_size(width, height)
    check_frames(backbone, frames)
    check_steps(steps)
    if num_candidates < 0:
        raise ValueError(f"num_candidates must be at least 1, or 0 for one per frame; got {num_candidates}")
    shape = backbone.latent_shape(frames, width, height)
    if candidates is not None:
        check_image(candidates, "candidate image batch")
        if tuple(candidates.shape[1:3]) != (height, width):
            raise ValueError(f"The candidate images are {tuple(candidates.shape[1:3])[::-1]} (width, height) but "
                             f"the video is {width}×{height}: resize them (e.g. Upscale Image) or set width and "
                             "height to their size.")
        selection = select_from_images(candidates, shape[2], score=score,
                                       encode=lambda images: encode_images(backbone, images),
                                       still=backbone.still_video)
    else:
        noise = candidate_noise(shape, num_candidates or shape[2], generator).to(backbone.device)
        selection = generate_and_select(
            host.denoiser(backbone, guidance, guidance_2), backbone.schedule, cond, noise, steps, shape[2],
            decode=lambda latents: backbone.decode(latents, check=host.check), score=score, generator=generator,
            still=backbone.still_video, on_step=on_step)
    return replace(selection, anchor=selection.anchor.to(host.out_device), images=selection.images.to(host.out_device))


def animate_anchor(backbone, cond, latent: torch.Tensor, *, steps: int, guidance: float,
                   guidance_2: float | None = None, p: float = DEFAULT_P, step_sizes: str, generator: torch.Generator,
                   host: Host = Host(), on_step: Callable[[int, int, torch.Tensor], None] | None = None
                   ) -> torch.Tensor:
    """Stage 2's entry point (NIVSDSOptimize and the command line): NI-VSDS on a video latent (the still anchor
    video) over ``steps`` of the sampler's grid, with one ε from ``generator``; the moved latent on
    ``host.out_device``. Stage 3 is ``t2v.text_to_video`` from this latent."""
    check_steps(steps)
    sizes = parse_step_sizes(step_sizes)
    iterations = nivsds_iterations(steps, p)
    check_latent_frames(backbone, latent.shape[2])
    x = latent.to(backbone.device, torch.float32)
    noise = noise_like(x.shape, generator).to(backbone.device)
    out = ni_vsds(host.denoiser(backbone, guidance, guidance_2), backbone.schedule, cond, x, noise, steps, iterations,
                  sizes, on_step=on_step)
    return out.to(host.out_device)
