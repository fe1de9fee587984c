"""The server side of the live animated preview (nodes/comfy_glue.py): frames leave as small JPEGs, throttled
to a few messages a second without losing a frame, the newest never waits longer than one interval, the last
one closes the run with a done event, and outside ComfyUI nothing happens at all."""
from __future__ import annotations

import base64
import io
import threading

import torch
from PIL import Image

from zeroshot_video.nodes import comfy_glue
from zeroshot_video.nodes.comfy_glue import DONE_EVENT, FRAMES_EVENT, FrameStream, Progress

META = {"node": "5", "prompt_id": "p"}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class ManualTimer:
    """threading.Timer's interface; the test fires it."""
    made = []

    def __init__(self, wait, function):
        self.wait, self.function, self.cancelled, self.daemon, self.due = wait, function, False, False, None
        ManualTimer.made.append(self)

    def start(self):
        pass

    def cancel(self):
        self.cancelled = True

    def fire(self):
        if not self.cancelled:
            self.cancelled = True
            self.function()


def _stream(rate=4.0, **kwargs):
    sent, clock = [], Clock()
    ManualTimer.made = []
    stream = FrameStream(lambda event, data: sent.append((event, data)), META, rate=rate, clock=clock,
                         timer=ManualTimer, **kwargs)
    return stream, sent, clock


def _frame(value: float, size=(48, 64)) -> torch.Tensor:
    return torch.full((*size, 3), value)


def _indices(sent):
    return [f["index"] for event, data in sent if event == FRAMES_EVENT for f in data["frames"]]


def test_frames_are_small_jpegs_of_the_frame():
    stream, sent, _ = _stream(size=32)
    stream.add(0, torch.linspace(0, 1, 300 * 200 * 3).reshape(300, 200, 3), last=False)
    (event, data), = sent
    assert event == FRAMES_EVENT and data["node"] == "5" and data["prompt_id"] == "p"
    picture = Image.open(io.BytesIO(base64.b64decode(data["frames"][0]["image"])))
    assert picture.format == "JPEG" and max(picture.size) == 32 and picture.size == (21, 32)


def test_a_burst_becomes_few_messages_and_loses_no_frame():
    stream, sent, clock = _stream(rate=4.0)
    for i in range(200):  # 200 frames within one second; timers fire when they are due
        clock.now = i * 0.005
        for timer in ManualTimer.made:
            if timer.due <= clock.now:
                timer.fire()
        stream.add(i, _frame(i / 200), last=i == 199)
        for timer in ManualTimer.made:
            timer.due = clock.now + timer.wait if timer.due is None else timer.due
    frames = [e for e, _ in sent if e == FRAMES_EVENT]
    assert 4 <= len(frames) <= 1 + 4 + 1, len(frames)  # the first at once, ≤ rate × 1 s, the last at once
    assert _indices(sent) == list(range(200))
    assert sent[-1] == (DONE_EVENT, {**META, "frames": 200})


def test_a_waiting_frame_goes_out_when_its_interval_ends_without_another_frame():
    stream, sent, clock = _stream(rate=4.0)
    stream.add(0, _frame(0.1), last=False)
    clock.now = 0.1
    stream.add(1, _frame(0.2), last=False)
    assert _indices(sent) == [0]
    timer, = ManualTimer.made
    assert abs(timer.wait - 0.15) < 1e-9 and timer.daemon
    clock.now = 0.25
    timer.fire()
    assert _indices(sent) == [0, 1]
    assert not any(event == DONE_EVENT for event, _ in sent)


def test_the_last_frame_flushes_at_once_and_cancels_the_timer():
    stream, sent, clock = _stream(rate=1.0)
    stream.add(3, _frame(0.1), last=False)
    clock.now = 0.01
    stream.add(4, _frame(0.2), last=False)
    stream.add(5, _frame(0.3), last=True)
    assert _indices(sent) == [3, 4, 5] and ManualTimer.made[0].cancelled
    assert sent[-1] == (DONE_EVENT, {**META, "frames": 3})


def test_real_timer_delivers_the_newest_frame_within_an_interval():
    delivered = threading.Event()
    sent = []

    def send(event, data):
        sent.append((event, data))
        if len(sent) == 2:
            delivered.set()

    stream = FrameStream(send, META, rate=20.0)
    stream.add(0, _frame(0.1), last=False)
    stream.add(1, _frame(0.2), last=False)
    assert delivered.wait(2.0), "the waiting frame was never sent"
    assert _indices(sent) == [0, 1]


def test_progress_outside_comfyui_streams_nothing():
    assert not comfy_glue.IN_COMFYUI
    progress = Progress(10)
    assert progress.stream is None
    progress.frame(0, _frame(0.5), 1)  # a no-op, not an error
    progress.update(1, _frame(0.5))


class Recorder:
    """comfy_glue.Progress as a sampler node uses it, keeping what the node streams."""
    made = []

    def __init__(self, total):
        self.streamed = []
        Recorder.made.append(self)

    def update(self, value, preview=None):
        pass

    def frame(self, index, image, count):
        self.streamed.append((index, image, count))


def _streamed(monkeypatch, run):
    Recorder.made = []
    monkeypatch.setattr(comfy_glue, "Progress", Recorder)
    frames = run()
    sampler, = Recorder.made
    return frames, sampler.streamed


def test_repeat_and_slide_streams_every_new_frame(modelscope, monkeypatch):
    from zeroshot_video.nodes.backbone_nodes import T2VTextEncode
    from zeroshot_video.nodes.ti2v_nodes import EncodeAnchorImage, RepeatAndSlideSampler
    cond = T2VTextEncode().encode(modelscope, "a cat", "")[0]
    anchor = EncodeAnchorImage().encode(modelscope, torch.rand(1, 32, 32, 3), 32, 32, "center")[0]
    video, streamed = _streamed(monkeypatch, lambda: RepeatAndSlideSampler().sample(
        modelscope, cond, anchor, num_frames=3, model_frames=4, steps=1, guidance=9.0, seed=0)[0])
    assert [(index, count) for index, _, count in streamed] == [(1, 4), (2, 4), (3, 4)]  # the last closes the run
    assert all(torch.equal(image, video[index]) for index, image, _ in streamed)


def test_fifo_streams_every_kept_frame(modelscope, monkeypatch):
    from zeroshot_video.nodes.backbone_nodes import T2VTextEncode
    from zeroshot_video.nodes.fifo_nodes import FIFOQueueWithImageEmbed
    from zeroshot_video.nodes.t2v_nodes import T2VSampler
    cond = T2VTextEncode().encode(modelscope, "a cat", "")[0]
    base = T2VSampler().sample(modelscope, cond, frames=4, width=64, height=64, steps=1, guidance=5.0, eta=0.0,
                               seed=0)[0]
    video, streamed = _streamed(monkeypatch, lambda: FIFOQueueWithImageEmbed().generate(
        modelscope, cond, base, num_frames=3, window_frames=4, partitions=1, lookahead=False, eta=1.0,
        guidance=5.0, seed=1, window_batch=1)[0])
    assert [(index, count) for index, _, count in streamed] == [(0, 3), (1, 3), (2, 3)]
    assert all(torch.equal(image, video[index]) for index, image, _ in streamed)
