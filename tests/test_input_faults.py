"""Bad input is refused where it enters, with a message that says what to change (issue 12, points 2 and 4):
non-finite numbers, absurd NI-VSDS step sizes, latents of another backbone, empty inputs, output prefixes that
cannot be written, API booleans that are not JSON booleans, and prompt-schedule entries past the end."""
from __future__ import annotations

import copy
import inspect
import logging
import math
import re
from types import SimpleNamespace

import pytest
import torch

from zeroshot_video import NODE_CLASS_MAPPINGS
from zeroshot_video.core.methods import fifo, i4vgen
from zeroshot_video.nodes import comfy_glue
from zeroshot_video.nodes.fifo_nodes import FIFOQueueWithImageEmbed, T2VPromptSchedule
from zeroshot_video.nodes.i4vgen_nodes import NIVSDSOptimize, RewardSelectAnchor
from zeroshot_video.nodes.inputs import LATENT_ORIGIN, NON_BOOLEAN, flag_non_booleans, latent_output
from zeroshot_video.nodes.t2v_nodes import DecodeVideoLatent, T2VSampler
from zeroshot_video.nodes.ti2v_nodes import EncodeAnchorImage, RepeatAndSlideSampler


def _declared(cls) -> dict:
    inputs = cls.INPUT_TYPES()
    return {**inputs.get("required", {}), **inputs.get("optional", {})}


def _defaults(cls) -> dict:
    declared = _declared(cls)
    return {name: declared[name][1]["default"] for name in inspect.signature(cls.VALIDATE_INPUTS).parameters
            if name != NON_BOOLEAN}


FLOAT_INPUTS = [(node, name) for node, cls in sorted(NODE_CLASS_MAPPINGS.items())
                for name, spec in _declared(cls).items() if spec[0] == "FLOAT"]


# --- point 2: numbers -----------------------------------------------------------------------------------------
def test_every_node_float_input_is_listed():
    assert len(FLOAT_INPUTS) >= 10 and ("T2VSampler", "guidance") in FLOAT_INPUTS and ("FIFOQueueWithImageEmbed",
                                                                                        "eta") in FLOAT_INPUTS


@pytest.mark.parametrize("node, name", FLOAT_INPUTS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_float_is_refused_at_validation(node, name, value):
    """ComfyUI's own range check lets NaN through (nan < min is False); float('1e999') is inf."""
    cls = NODE_CLASS_MAPPINGS[node]
    options = _declared(cls)[name][1]
    answer = cls.VALIDATE_INPUTS(**{**_defaults(cls), name: value})
    assert answer == f"{name} must be a finite number within [{options['min']}, {options['max']}], got {value}"


@pytest.mark.parametrize("text", ["10,1e308", "1001", "10,inf", "-inf", "nan,1"])
def test_absurd_or_non_finite_step_sizes_are_refused(text):
    with pytest.raises(ValueError, match="finite number >= 0 and at most 1000"):
        i4vgen.parse_step_sizes(text)
    answer = NIVSDSOptimize.VALIDATE_INPUTS(**{**_defaults(NIVSDSOptimize), "step_sizes": text})
    assert isinstance(answer, str) and "at most 1000" in answer and "VAE" in answer


def test_the_largest_step_size_is_accepted_and_the_tooltip_says_the_bound():
    assert i4vgen.parse_step_sizes("1000, 0") == (1000.0, 0.0)
    assert "1000" in _declared(NIVSDSOptimize)["step_sizes"][1]["tooltip"]


# --- point 4: latents carry their backbone --------------------------------------------------------------------
WAN = {"family": "wan", "name": "Wan2.1-T2V-1.3B-Diffusers", "channels": 16}


def _run_with_latent(node: str, handle, latent):
    """The node of that name with ``latent`` as its LATENT input; everything else valid and small."""
    if node == "T2VSampler":
        return T2VSampler().sample(handle, None, 2, 64, 64, 1, 5.0, 0.0, 0, latent=latent)
    if node == "DecodeVideoLatent":
        return DecodeVideoLatent().decode(handle, latent, 4)
    if node == "NIVSDSOptimize":
        return NIVSDSOptimize().optimize(handle, None, latent, 2, 5.0, 0.6, "10,1", 0)
    return FIFOQueueWithImageEmbed().generate(handle, None, latent, 2, 2, 2, True, 1.0, 5.0, 0, 1)


LATENT_NODES = ["T2VSampler", "DecodeVideoLatent", "NIVSDSOptimize", "FIFOQueueWithImageEmbed"]


def test_the_latent_checks_cover_every_node_with_a_latent_input():
    taking = {node for node, cls in NODE_CLASS_MAPPINGS.items()
              if any(spec[0] == "LATENT" for spec in _declared(cls).values())}
    assert taking == set(LATENT_NODES)


@pytest.fixture
def no_unet_call(modelscope):
    """The ModelScope handle, whose UNet must not run: the refusal comes before any work."""
    def refuse(*args):
        raise AssertionError("the model ran")
    hook = modelscope.ready().unet.register_forward_pre_hook(refuse)
    yield modelscope
    hook.remove()


@pytest.mark.parametrize("node", LATENT_NODES)
def test_a_latent_of_another_family_is_refused_naming_both_backbones(node, animatediff, no_unet_call):
    """An AnimateDiff latent has ModelScope's shape, so nothing else would notice."""
    latent = latent_output(animatediff.ready(), torch.zeros(1, 4, 2, 8, 8))
    with pytest.raises(ValueError) as error:
        _run_with_latent(node, no_unet_call, latent)
    message = str(error.value)
    assert f"made by {animatediff.ready().name} (animatediff, 4 latent channels)" in message
    assert f"this node's backbone is {no_unet_call.ready().name} (modelscope, 4 latent channels)" in message


@pytest.mark.parametrize("node", LATENT_NODES)
def test_a_latent_of_another_channel_count_is_refused(node, no_unet_call):
    tagged = {"samples": torch.zeros(1, 16, 2, 8, 8), LATENT_ORIGIN: WAN}
    with pytest.raises(ValueError, match=r"made by Wan2.1-T2V-1.3B-Diffusers \(wan, 16 latent channels\)"):
        _run_with_latent(node, no_unet_call, tagged)
    with pytest.raises(ValueError, match=r"has 16 latent channels, but .* \(modelscope, 4 latent channels\) takes 4"):
        _run_with_latent(node, no_unet_call, {"samples": torch.zeros(1, 16, 2, 8, 8)})


@pytest.mark.parametrize("node", LATENT_NODES)
def test_an_empty_latent_is_refused_where_it_enters(node, no_unet_call):
    with pytest.raises(ValueError, match=r"is empty \(samples shaped \(1, 4, 0, 8, 8\), no frames\)"):
        _run_with_latent(node, no_unet_call, {"samples": torch.zeros(1, 4, 0, 8, 8)})


def test_the_pack_s_latents_carry_their_backbone_and_are_taken_back(modelscope):
    anchor_latent = EncodeAnchorImage().encode(modelscope, torch.rand(1, 64, 64, 3), 64, 64, "center")[1]
    assert anchor_latent[LATENT_ORIGIN] == {"family": "modelscope", "name": modelscope.ready().name, "channels": 4}
    video = T2VSampler().sample(modelscope, _cond(modelscope), 2, 64, 64, 1, 5.0, 0.0, 0, latent=anchor_latent,
                                denoise=0.0)[0]
    assert video[LATENT_ORIGIN] == anchor_latent[LATENT_ORIGIN] and video["samples"].shape == (1, 4, 1, 8, 8)
    assert DecodeVideoLatent().decode(modelscope, video, 4)[0].shape == (1, 64, 64, 3)


def test_an_untagged_latent_of_the_right_shape_is_taken(modelscope):
    """Latents from other packs' nodes carry no origin: only their shape can be checked."""
    assert DecodeVideoLatent().decode(modelscope, {"samples": torch.zeros(1, 4, 1, 8, 8)}, 4)[0].shape == (1, 64, 64, 3)


def _cond(handle, prompt="a cat"):
    from zeroshot_video.nodes.backbone_nodes import T2VTextEncode
    return T2VTextEncode().encode(handle, prompt, "")[0]


def test_empty_image_batches_are_refused_where_they_enter(modelscope):
    empty = torch.zeros(0, 64, 64, 3)
    with pytest.raises(ValueError, match=r"The image is empty \(shape \(0, 64, 64, 3\)\)"):
        EncodeAnchorImage().encode(modelscope, empty, 64, 64, "center")
    cond = SimpleNamespace(prompt="a cat")
    with pytest.raises(ValueError, match=r"The candidate image batch is empty"):
        RewardSelectAnchor().select(modelscope, cond, None, 2, 64, 64, 1, 5.0, 0, 0, candidates=empty)


# --- point 4: output prefixes ---------------------------------------------------------------------------------
@pytest.fixture
def output(tmp_path, monkeypatch):
    monkeypatch.setattr(comfy_glue, "output_folder", lambda: tmp_path)
    (tmp_path / "taken").write_text("a file")
    return tmp_path


PREFIXES = [("../x", "must name a folder inside the output folder"),
            ("/tmp/x", "must name a folder inside the output folder"),
            ("fifo\x00frames", r"contains a NUL character \(\\x00\)"),
            ("a" * 300, "is 300 bytes long; file systems take at most 255 bytes per name"),
            ("taken/frames", "taken is a file, not a folder")]


@pytest.mark.parametrize("prefix, message", PREFIXES)
def test_a_bad_filename_prefix_is_refused_at_validation(output, prefix, message):
    values = {**_defaults(FIFOQueueWithImageEmbed), "stream_to_disk": True, "filename_prefix": prefix}
    answer = FIFOQueueWithImageEmbed.VALIDATE_INPUTS(**values)
    assert isinstance(answer, str), answer
    assert re.search(message, answer) and "embedded null byte" not in answer
    with pytest.raises(ValueError, match=message):  # the same rule where the folder is made
        fifo.stream_folder(output, prefix)
    assert FIFOQueueWithImageEmbed.VALIDATE_INPUTS(**{**values, "stream_to_disk": False}) is True


def test_a_good_filename_prefix_passes_validation(output):
    values = {**_defaults(FIFOQueueWithImageEmbed), "stream_to_disk": True, "filename_prefix": "fifo/frames"}
    assert FIFOQueueWithImageEmbed.VALIDATE_INPUTS(**values) is True
    assert fifo.stream_folder(output, "fifo/frames") == output / "fifo" / "frames_00001"


# --- point 4: strict booleans ---------------------------------------------------------------------------------
def _prompt(**fifo_inputs) -> dict:
    return {"prompt": {
        "1": {"class_type": "FIFOQueueWithImageEmbed",
              "inputs": {"base_clip": ["2", 0], "lookahead": True, "stream_to_disk": False, **fifo_inputs}},
        "2": {"class_type": "T2VSampler", "inputs": {"guidance": 9.0}},
        "3": {"class_type": "RepeatAndSlideSampler", "inputs": {"latent_queue": 0}},
        "4": {"class_type": "SomeoneElsesNode", "inputs": {"stream_to_disk": "false"}},
    }, "client_id": "x"}


def test_the_prompt_handler_records_non_boolean_values_of_the_pack_s_boolean_inputs():
    body = _prompt(stream_to_disk="false", keep_frames=["5", 0])
    untouched = copy.deepcopy(body)
    assert flag_non_booleans(body, NODE_CLASS_MAPPINGS) is body
    assert body["prompt"]["1"]["inputs"][NON_BOOLEAN] == {"stream_to_disk": "false"}
    assert body["prompt"]["3"]["inputs"][NON_BOOLEAN] == {"latent_queue": 0}
    for node in ("2", "4"):  # no BOOLEAN input; another pack's node
        assert body["prompt"][node] == untouched["prompt"][node]
    del body["prompt"]["1"]["inputs"][NON_BOOLEAN], body["prompt"]["3"]["inputs"][NON_BOOLEAN]
    assert body["prompt"]["1"] == untouched["prompt"]["1"]


def test_a_prompt_of_real_booleans_is_left_as_it_is_and_a_stale_record_is_dropped():
    body = _prompt()
    body["prompt"]["3"]["inputs"]["latent_queue"] = True
    expected = copy.deepcopy(body)
    body["prompt"]["1"]["inputs"][NON_BOOLEAN] = {"lookahead": "yes"}  # sent by the client: not ours to keep
    assert flag_non_booleans(body, NODE_CLASS_MAPPINGS) == expected


@pytest.mark.parametrize("body", [None, [], {"prompt": None}, {"prompt": {"1": None}}, {"prompt": {"1": {}}},
                                  {"prompt": {"1": {"class_type": "FIFOQueueWithImageEmbed", "inputs": [1]}}},
                                  {"prompt": {"1": {"class_type": ["x"], "inputs": {}}}}])
def test_the_prompt_handler_never_raises(body):
    assert flag_non_booleans(copy.deepcopy(body), NODE_CLASS_MAPPINGS) == body


@pytest.mark.parametrize("raw, send", [("false", '"stream_to_disk": false'), ("true", '"stream_to_disk": true'),
                                       (0, '"stream_to_disk": false'),
                                       ("maybe", '"stream_to_disk": true or "stream_to_disk": false')])
def test_validation_refuses_a_recorded_non_boolean_showing_the_json_to_send(raw, send):
    values = {**_defaults(FIFOQueueWithImageEmbed), NON_BOOLEAN: {"stream_to_disk": raw}}
    answer = FIFOQueueWithImageEmbed.VALIDATE_INPUTS(**values)
    shown = f'"{raw}"' if isinstance(raw, str) else str(raw)
    assert answer == (f"stream_to_disk must be a JSON boolean (true or false without quotes), got {shown}, which "
                      f"ComfyUI would read as {'true' if raw else 'false'}: send {send}")


def test_the_handler_and_validation_together_refuse_the_string_false():
    body = _prompt(stream_to_disk="false")
    flag_non_booleans(body, NODE_CLASS_MAPPINGS)
    hidden = body["prompt"]["3"]["inputs"][NON_BOOLEAN]
    answer = RepeatAndSlideSampler.VALIDATE_INPUTS(**{**_defaults(RepeatAndSlideSampler), NON_BOOLEAN: hidden})
    assert answer.startswith("latent_queue must be a JSON boolean") and answer.endswith('"latent_queue": false')


# --- point 4: prompt schedule entries past the end ------------------------------------------------------------
def test_unreached_prompts_are_named():
    assert fifo.unreached_prompts([0, 5], 6) is None
    assert fifo.unreached_prompts([3, 6], 6) == ("prompt schedule: the prompt starting at frame 6 begins after the "
                                                 "last frame (5) and is ignored: lower start_frame or raise "
                                                 "num_frames.")
    assert "2 prompts (starting at frames 7, 9) begin after the last frame (5) and are" in fifo.unreached_prompts(
        [9, 7], 6)


def test_the_fifo_node_says_so_in_the_log_and_on_the_node(modelscope, monkeypatch, caplog):
    shown = []
    monkeypatch.setattr(comfy_glue, "progress_text", shown.append)
    cond = _cond(modelscope)
    base = T2VSampler().sample(modelscope, cond, 2, 64, 64, 4, 5.0, 1.0, 0)[0]
    schedule = T2VPromptSchedule().add(_cond(modelscope, "a dog"), 50)[0]
    with caplog.at_level(logging.WARNING):
        FIFOQueueWithImageEmbed().generate(modelscope, cond, base, 2, 2, 2, True, 1.0, 5.0, 0, 4,
                                           prompt_schedule=schedule)
    note = "prompt schedule: the prompt starting at frame 50 begins after the last frame (1) and is ignored"
    assert len(shown) == 1 and shown[0].startswith(note)
    assert any(record.getMessage().startswith(note) for record in caplog.records)


def test_progress_text_outside_comfyui_does_nothing():
    assert comfy_glue.progress_text("hello") is None
