"""The example workflows, one description each; ``python tools/workflows.py`` turns every entry of
WORKFLOWS into its UI graph and its API prompt, so adding a workflow means adding one description here.

A description has:
- ``name``: the file name under workflows/ and workflows/api/;
- ``note``: the text of the Note node at the top left: what the workflow demonstrates, which models it
  needs and where they go;
- ``columns``: the graph left to right, each column a list of nodes top to bottom. A node has an ``id``
  (permanent: API clients address inputs as ``<id>.<input>``), a ``type`` (node class), a ``group`` (the
  titled box it sits in; consecutive columns may share one) and ``inputs`` by name: a widget value, or
  ``(source node id, output index)`` for a link. Widgets left out take the node's default; model names
  are always given, as the names ``core/standin_models.py`` writes, so the API prompt runs against the
  stand-ins in tier-2 tests. Optional: ``title``, ``size`` ([width, height]).

Every workflow ships at its model's own size, frame count and steps (what a user gets by pressing Queue). The
CPU tiers run them smaller through one table, ``tests/comfyui/cpu_overrides.json``, which may lower only sizes,
frame counts, steps and window sizes (``tests/test_workflows.py`` checks it), so they run the structure users run.
"""
from zeroshot_video.testing import standin_files_native as native_files
from zeroshot_video.testing import standin_files_sd15 as sd15_files
from zeroshot_video.testing import standin_files_wan as wan_files
from zeroshot_video.testing import standin_models as models

import example_inputs

T2V_BASIC = {
    "name": "t2v_basic",
    "note": (
        "Plain text-to-video: the baseline every other workflow of this pack builds on.\n"
        "Load T2V Backbone → T2V Text Encode → T2V Sampler (16 frames, 256×256, 25 DDIM steps, "
        "guidance 9) → Decode Video Latent → Create Video (8 fps) → Save Video (mp4, h264, in "
        "output/zeroshot_video/).\n\n"
        f"Model: ModelScope text-to-video 1.7B (ali-vilab/text-to-video-ms-1.7b, diffusers format) as the "
        f"folder models/diffusers/{models.MODELSCOPE}/ (the folder holding model_index.json). Zeroscope v2 "
        f"works the same way at 576×320."
    ),
    "columns": [
        [{"id": 1, "type": "LoadT2VBackbone", "group": "Model",
          "inputs": {"model": models.MODELSCOPE, "motion_adapter": "none", "dtype": "auto"}}],
        [{"id": 2, "type": "T2VTextEncode", "group": "Prompt", "size": [400, 260],
          "inputs": {"backbone": (1, 0),
                     "prompt": "a red panda eating bamboo in a sunny forest, high quality",
                     "negative_prompt": "blurry, low quality, watermark, text"}}],
        [{"id": 3, "type": "T2VSampler", "group": "Sample",
          "inputs": {"backbone": (1, 0), "conditioning": (2, 0), "frames": 16, "width": 256, "height": 256,
                     "steps": 25, "guidance": 9.0, "seed": 42}}],
        [{"id": 4, "type": "DecodeVideoLatent", "group": "Decode and save",
          "inputs": {"backbone": (1, 0), "latent": (3, 0)}},
         {"id": 5, "type": "CreateVideo", "group": "Decode and save", "inputs": {"images": (4, 0), "fps": 8}}],
        [{"id": 6, "type": "SaveVideo", "group": "Decode and save", "size": [420, 440],
          "inputs": {"video": (5, 0), "filename_prefix": "zeroshot_video/t2v_basic", "format": "mp4",
                     "codec": "h264"}}],
    ],
}


# What the workflows below need, in the words of their notes (README "Where the models go" has the table).
NEEDS_MODELSCOPE = (f"ModelScope text-to-video 1.7B (ali-vilab/text-to-video-ms-1.7b, diffusers format) as the folder "
                    f"models/diffusers/{models.MODELSCOPE}/ (the folder holding model_index.json)")
NEEDS_ANIMATEDIFF = (f"Stable Diffusion 1.5 in diffusers format as models/diffusers/{models.SD15}/ and the AnimateDiff "
                     f"motion adapter guoyww/animatediff-motion-adapter-v1-5-2 as "
                     f"models/animatediff_models/{models.MOTION_ADAPTER}/")
NEEDS_IP_ADAPTER = (f"IP-Adapter Plus (h94/IP-Adapter → models/ip-adapter-plus_sd15.safetensors) as "
                    f"models/ipadapter/{models.IP_ADAPTER} and its CLIP ViT-H image encoder (h94/IP-Adapter → "
                    f"models/image_encoder/model.safetensors, renamed) as models/clip_vision/{models.IMAGE_ENCODER}")
NEEDS_SD15_FILES = (f"a Stable Diffusion 1.5 checkpoint as the single file models/checkpoints/{sd15_files.CHECKPOINT} "
                    f"(stable-diffusion-v1-5/stable-diffusion-v1-5, or any SD1.5 fine-tune) and an AnimateDiff motion "
                    f"module as models/animatediff_models/{sd15_files.MOTION_MODULE_V3} (a .safetensors release of "
                    f"v3_sd15_mm; v1 and v2 modules load the same way)")
SINGLE_FILE_TWIN = "The same graph as {twin}, with the models loaded from ComfyUI's own single files.\n"
NEEDS_REWARD = (f"a CLIP-family reward model folder: PickScore (yuvalkirstain/PickScore_v1; add the tokenizer files and "
                f"preprocessor_config.json of laion/CLIP-ViT-H-14-laion2B-s32B-b79K if it lacks them) as "
                f"models/reward_models/{models.REWARD_MODEL}/")


def needs_input(name: str) -> str:
    return (f"Input image: Load Image opens {name} from ComfyUI's input/ folder; copy it there from this pack's "
            f"workflows/inputs/, or upload your own in the node.")


NEGATIVE = "blurry, low quality, watermark, text"
SCENE_PROMPT = "a red ball rolling across a green meadow at sunset, hills in the background, high quality"
SAVE_SIZE = [420, 440]


def _modelscope(node_id: int, group: str = "Model") -> dict:
    return {"id": node_id, "type": "LoadT2VBackbone", "group": group,
            "inputs": {"model": models.MODELSCOPE, "motion_adapter": "none", "dtype": "auto"}}


def _animatediff_checkpoint(node_id: int) -> dict:
    return {"id": node_id, "type": "LoadAnimateDiffCheckpoint", "group": "Model",
            "inputs": {"checkpoint": sd15_files.CHECKPOINT, "motion_module": sd15_files.MOTION_MODULE_V3,
                       "dtype": "auto"}}


def _reward_model(node_id: int) -> dict:
    return {"id": node_id, "type": "LoadRewardModel", "group": "Model",
            "inputs": {"model": models.REWARD_MODEL, "dtype": "auto"}}


def _animatediff(node_id: int, image_attention: bool = False) -> dict:
    inputs = {"model": models.SD15, "motion_adapter": models.MOTION_ADAPTER, "dtype": "auto"}
    if image_attention:
        inputs.update(ip_adapter=models.IP_ADAPTER, image_encoder=models.IMAGE_ENCODER)
    return {"id": node_id, "type": "LoadT2VBackbone", "group": "Model", "inputs": inputs}


def _prompt(node_id: int, backbone: int, prompt: str, group: str = "Prompt", title: str | None = None) -> dict:
    node = {"id": node_id, "type": "T2VTextEncode", "group": group, "size": [400, 260],
            "inputs": {"backbone": (backbone, 0), "prompt": prompt, "negative_prompt": NEGATIVE}}
    return {**node, "title": title} if title else node


def _save(node_id: int, frames: tuple, name: str, fps: float = 8) -> list[list[dict]]:
    """Create Video → Save Video (mp4, h264, output/zeroshot_video/<name>): the last columns."""
    return [[{"id": node_id, "type": "CreateVideo", "group": "Save", "inputs": {"images": frames, "fps": fps}}],
            [{"id": node_id + 1, "type": "SaveVideo", "group": "Save", "size": SAVE_SIZE,
              "inputs": {"video": (node_id, 0), "filename_prefix": f"zeroshot_video/{name}", "format": "mp4",
                         "codec": "h264"}}]]


def _ti2v_strategies(first_id: int, group: str = "TI2V-Zero") -> list[dict]:
    """The paper's two strategies: DDPM-inversion noise init and R = 4 resampling rounds."""
    return [{"id": first_id, "type": "DDPMInvertQueue", "group": group, "inputs": {"mode": "ddpm_inversion"}},
            {"id": first_id + 1, "type": "ResampleStep", "group": group, "inputs": {"rounds": 4}}]


def _ti2v_sampler(node_id: int, backbone: int, conditioning: int, anchor: int, strategies: int, num_frames: int,
                  group: str = "TI2V-Zero") -> dict:
    """RepeatAndSlideSampler at the paper's defaults: F = 16, S = 10, guidance 9, both strategies on."""
    return {"id": node_id, "type": "RepeatAndSlideSampler", "group": group,
            "inputs": {"backbone": (backbone, 0), "conditioning": (conditioning, 0), "anchor": (anchor, 0),
                       "num_frames": num_frames, "model_frames": 16, "steps": 10, "guidance": 9.0, "seed": 42,
                       "noise_init": (strategies, 0), "resample": (strategies + 1, 0)}}


def _ti2v_zero(name: str, note: str, image: str, num_frames: int, backbone: dict | None = None, size: int = 256,
               guidance: float = 9.0) -> dict:
    """LoadImage → EncodeAnchorImage → RepeatAndSlideSampler, on ModelScope at 256² unless told otherwise."""
    sampler = _ti2v_sampler(7, 1, 2, 4, 5, num_frames)
    sampler["inputs"]["guidance"] = guidance
    return {
        "name": name, "note": note,
        "columns": [
            [backbone or _modelscope(1), _prompt(2, 1, SCENE_PROMPT)],
            [{"id": 3, "type": "LoadImage", "group": "Anchor image", "size": [320, 360], "inputs": {"image": image}},
             {"id": 4, "type": "EncodeAnchorImage", "group": "Anchor image",
              "inputs": {"backbone": (1, 0), "image": (3, 0), "width": size, "height": size, "crop": "center"}}],
            _ti2v_strategies(5),
            [sampler],
            *_save(8, (7, 0), name),
        ],
    }


TI2V_ZERO_SETTINGS = (
    "TI2V-Zero at the paper's defaults: 16 frames per model call (the last 15 frames condition the new one), 10 "
    "DDIM steps, guidance 9, DDPM-inversion noise init (DDPM Invert Queue) and 4 resampling rounds (Resample Step), "
    "so every new frame costs 10 × (4 + 1) = 50 UNet calls, one VAE encode and one decode.")

TI2V_ZERO_BASIC = _ti2v_zero(
    "ti2v_zero_basic",
    "Image-to-video with a text-to-video model (TI2V-Zero, no training): the image is frame 0, 15 new frames "
    "follow it, 16 in all.\n"
    "Load Image → Encode Anchor Image (centre crop, 256×256) → Repeat-and-Slide Sampler → Create Video (8 fps) → "
    "Save Video (mp4 in output/zeroshot_video/).\n"
    f"{TI2V_ZERO_SETTINGS}\n\n"
    f"Model: {NEEDS_MODELSCOPE}.\n{needs_input(example_inputs.STILL)}",
    example_inputs.STILL, 15)

TI2V_ZERO_BASIC_CHECKPOINT = _ti2v_zero(
    "ti2v_zero_basic_checkpoint",
    "Image-to-video with TI2V-Zero on AnimateDiff, from an SD1.5 checkpoint file and a motion module file: the image "
    "is frame 0, 15 new frames follow it, 16 in all.\n"
    "ti2v_zero_basic's graph on AnimateDiff, loaded from ComfyUI's own single files (ModelScope has no single-file "
    "release).\n"
    "Load SD1.5 Checkpoint + Motion Module → Encode Anchor Image (centre crop, 512×512: AnimateDiff's own size, "
    "where ti2v_zero_basic has ModelScope's 256×256) → Repeat-and-Slide Sampler (guidance 7.5, AnimateDiff's) → "
    "Create Video (8 fps) → Save Video.\n"
    "16 frames per model call, 10 DDIM steps, DDPM-inversion noise init and 4 resampling rounds: every new frame "
    "costs 10 × (4 + 1) = 50 UNet calls.\n\n"
    f"Models: {NEEDS_SD15_FILES}.\n{needs_input(example_inputs.STILL)}",
    example_inputs.STILL, 15, backbone=_animatediff_checkpoint(1), size=512, guidance=7.5)

TI2V_ZERO_LONG = _ti2v_zero(
    "ti2v_zero_long",
    "Long image-to-video with TI2V-Zero: 127 new frames after the image, 128 in all (16 s at 8 fps).\n"
    "The same graph as ti2v_zero_basic with num_frames 127: the queue slides one frame per new frame, so memory "
    "stays that of one 16-frame clip (only the finished frames pile up, on the CPU) and time grows linearly; "
    "the sampler previews each new frame as it is made. Any length works.\n"
    f"{TI2V_ZERO_SETTINGS}\n\n"
    f"Model: {NEEDS_MODELSCOPE}.\n{needs_input(example_inputs.STILL)}",
    example_inputs.STILL, 127)

TI2V_ZERO_PREDICTION = _ti2v_zero(
    "ti2v_zero_prediction",
    "Video prediction with TI2V-Zero (our extension): several given frames seed the queue and the video continues "
    "after the last one — here a 4-frame clip and 12 new frames, 16 in all.\n"
    f"Load Image reads every frame of an animated image (APNG, animated WebP or GIF) as one image batch; separate "
    f"images batched with Batch Images work too. Fewer than 15 frames: the first is repeated to fill the queue. "
    f"The given frames open the video unchanged.\n{TI2V_ZERO_SETTINGS}\n\n"
    f"Model: {NEEDS_MODELSCOPE}.\n{needs_input(example_inputs.CLIP)}",
    example_inputs.CLIP, 12)


FIFO_SETTINGS = (
    "FIFO-Diffusion: the base clip must come from the same backbone with frames = window frames f = 16 and steps "
    "S = f × partitions n = 16 × 4 = 64, with the same eta (1.0) and guidance; lookahead on (2n = 8 windows per "
    "frame). The first S − f = 48 emitted frames are warm-up and dropped. Memory does not grow with the length; "
    "window_batch 8 runs all windows of a step in one UNet call (faster on a GPU with memory to spare).")


def _base_clip(node_id: int, backbone: int, conditioning: int, size: int, guidance: float) -> dict:
    return {"id": node_id, "type": "T2VSampler", "group": "Base clip",
            "inputs": {"backbone": (backbone, 0), "conditioning": (conditioning, 0), "frames": 16, "width": size,
                       "height": size, "steps": 64, "guidance": guidance, "eta": 1.0, "seed": 42, "grid": "fifo"}}


def _fifo(node_id: int, backbone: int, conditioning: int, base_clip: int, num_frames: int, guidance: float,
          **extra) -> dict:
    return {"id": node_id, "type": "FIFOQueueWithImageEmbed", "group": "FIFO-Diffusion", "size": [360, 560],
            "inputs": {"backbone": (backbone, 0), "conditioning": (conditioning, 0), "base_clip": (base_clip, 0),
                       "num_frames": num_frames, "window_frames": 16, "partitions": 4, "lookahead": True,
                       "eta": 1.0, "guidance": guidance, "seed": 42, "window_batch": 1, **extra}}


FIFO_LONG = {
    "name": "fifo_long",
    "note": (
        "Long text-to-video at constant memory (FIFO-Diffusion): 256 frames from a 16-frame model.\n"
        "T2V Sampler makes the 16-frame base clip (64 steps, eta 1, guidance 12) → FIFO Queue (256 frames, each "
        "written to output/zeroshot_video/fifo_long_frames_NNNNN/ as it comes, so an interrupted run keeps its "
        "frames) → Create Video (8 fps) → Save Video.\n"
        f"{FIFO_SETTINGS}\n\n"
        f"Model: {NEEDS_MODELSCOPE}. Zeroscope v2 (models/diffusers/{models.ZEROSCOPE}/) works the same way at "
        "576×320."
    ),
    "columns": [
        [_modelscope(1), _prompt(2, 1, "a drone flight along a rocky coastline at golden hour, waves breaking, "
                                        "high quality")],
        [_base_clip(3, 1, 2, 256, 12.0)],
        [_fifo(4, 1, 2, 3, 256, 12.0, stream_to_disk=True, filename_prefix="zeroshot_video/fifo_long_frames")],
        *_save(5, (4, 0), "fifo_long"),
    ],
}

FIFO_IMAGE_EMBED_SEEDED = {
    "name": "fifo_image_embed_seeded",
    "note": (
        "FIFO-Diffusion seeded with image embeddings (seeds/000) on AnimateDiff + IP-Adapter: 128 frames that keep "
        "the look of the first one.\n"
        "The base clip is sampled from the text alone; the FIFO node decodes its first frame once, turns it into "
        "IP-Adapter image tokens and lets them condition every step of the long video (seed_image_from_base_clip; "
        "the negative branch sees a gray image), which holds the subject and colours steady over a long run.\n"
        f"{FIFO_SETTINGS}\n\n"
        f"Models: {NEEDS_ANIMATEDIFF}; {NEEDS_IP_ADAPTER}."
    ),
    "columns": [
        [_animatediff(1, image_attention=True),
         _prompt(2, 1, "a hot air balloon drifting over snowy mountains, cinematic, high quality")],
        [_base_clip(3, 1, 2, 512, 7.5)],
        [_fifo(4, 1, 2, 3, 128, 7.5, seed_image_from_base_clip=True, image_scale=1.0)],
        *_save(5, (4, 0), "fifo_image_embed_seeded"),
    ],
}

FIFO_IMAGE_TO_VIDEO = {
    "name": "fifo_image_to_video",
    "note": (
        "Long image-to-video with FIFO-Diffusion on AnimateDiff + IP-Adapter: your image conditions the base clip "
        "and every step of a 128-frame video.\n"
        "Load Image → Encode Anchor Image (512×512, centre crop) gives the image tokens; T2V Conditioning + Image "
        "Embeds adds them to the prompt for the base clip, and the FIFO node takes the same tokens (image_embeds). "
        "The image steers content and style through IP-Adapter; it is not copied as frame 0 (TI2V-Zero does "
        "that).\n"
        f"{FIFO_SETTINGS}\n\n"
        f"Models: {NEEDS_ANIMATEDIFF}; {NEEDS_IP_ADAPTER}.\n{needs_input(example_inputs.STILL)}"
    ),
    "columns": [
        [_animatediff(1, image_attention=True), _prompt(2, 1, SCENE_PROMPT)],
        [{"id": 3, "type": "LoadImage", "group": "Image", "size": [320, 360],
          "inputs": {"image": example_inputs.STILL}},
         {"id": 4, "type": "EncodeAnchorImage", "group": "Image",
          "inputs": {"backbone": (1, 0), "image": (3, 0), "width": 512, "height": 512, "crop": "center"}}],
        [{"id": 5, "type": "T2VConditioningAddImage", "group": "Base clip",
          "inputs": {"conditioning": (2, 0), "image_embeds": (4, 2), "image_scale": 1.0}},
         _base_clip(6, 1, 5, 512, 7.5)],
        [_fifo(7, 1, 2, 6, 128, 7.5, image_embeds=(4, 2), image_scale=1.0)],
        *_save(8, (7, 0), "fifo_image_to_video"),
    ],
}

FIFO_MULTI_PROMPT = {
    "name": "fifo_multi_prompt",
    "note": (
        "A long video whose prompt changes over time (FIFO-Diffusion multi-prompt): 192 frames, a new prompt at "
        "frames 64 and 128.\n"
        "The FIFO node's own conditioning (prompt 1) starts the video and the base clip; each T2V Prompt Schedule "
        "node adds a prompt from its start_frame on, chained one into the next. At a switch the whole queue takes "
        "the new prompt; the frames already in it finish under it, so the change blends in over a few frames.\n"
        f"{FIFO_SETTINGS}\n\n"
        f"Model: {NEEDS_MODELSCOPE}."
    ),
    "columns": [
        [_modelscope(1)],
        [_prompt(2, 1, "a sailing boat on a calm sea at sunrise, high quality", "Prompts", "Prompt 1 (frames 0–63)"),
         _prompt(3, 1, "a sailing boat on a calm sea at noon, clear blue sky, high quality", "Prompts",
                 "Prompt 2 (frames 64–127)"),
         _prompt(4, 1, "a sailing boat on a calm sea at sunset, golden light, high quality", "Prompts",
                 "Prompt 3 (from frame 128)")],
        [_base_clip(5, 1, 2, 256, 12.0),
         {"id": 6, "type": "T2VPromptSchedule", "group": "Prompt schedule",
          "inputs": {"conditioning": (3, 0), "start_frame": 64}},
         {"id": 7, "type": "T2VPromptSchedule", "group": "Prompt schedule",
          "inputs": {"conditioning": (4, 0), "start_frame": 128, "prompt_schedule": (6, 0)}}],
        [_fifo(8, 1, 2, 5, 192, 12.0, prompt_schedule=(7, 0))],
        *_save(9, (8, 0), "fifo_multi_prompt"),
    ],
}


I4VGEN_STAGES = (
    "I4VGen: 1. Reward Select Anchor samples one candidate image per frame with the video model itself (from the "
    "noise the video would start from), scores them against the prompt with the reward model (scores in Preview "
    "Any) and repeats the best one into a still video; 2a. NI-VSDS Optimize sets it in motion (int(25 × 0.6) + 1 "
    "= 16 iterations with one fixed noise, step sizes 10,10,10,1); 2b. T2V Sampler regenerates from that latent "
    "(denoise 1.0: fresh noise at the first step's level, which keeps a trace of the anchor). About 66 UNet calls "
    "against 25 for plain sampling.")


def _i4vgen(name: str, note: str, backbone: dict, size: int, guidance: float) -> dict:
    sampling = {"steps": 25, "guidance": guidance}
    video = {"frames": 16, "width": size, "height": size, **sampling}
    return {
        "name": name, "note": note,
        "columns": [
            [backbone, _reward_model(2),
             _prompt(3, 1, "a corgi running along a beach at sunset, high quality")],
            [{"id": 4, "type": "RewardSelectAnchor", "group": "1 · Anchor image",
              "inputs": {"backbone": (1, 0), "conditioning": (3, 0), "reward_model": (2, 0), **video, "seed": 42,
                         "num_candidates": 0}},
             {"id": 5, "type": "PreviewAny", "group": "1 · Anchor image", "title": "Candidate scores",
              "size": [320, 220], "inputs": {"source": (4, 2)}}],
            [{"id": 6, "type": "NIVSDSOptimize", "group": "2a · NI-VSDS",
              "inputs": {"backbone": (1, 0), "conditioning": (3, 0), "latent": (4, 0), **sampling, "p": 0.6,
                         "step_sizes": "10,10,10,1", "seed": 42}}],
            [{"id": 7, "type": "T2VSampler", "group": "2b · Regenerate",
              "inputs": {"backbone": (1, 0), "conditioning": (3, 0), **video, "eta": 0.0, "seed": 42,
                         "latent": (6, 0), "denoise": 1.0}}],
            [{"id": 8, "type": "DecodeVideoLatent", "group": "Save",
              "inputs": {"backbone": (1, 0), "latent": (7, 0), "chunk": 4}}],
            *_save(9, (8, 0), name),
        ],
    }


I4VGEN_T2V = _i4vgen(
    "i4vgen_t2v",
    "Text-to-video through an anchor image (I4VGen) on AnimateDiff: 16-frame clips with a sharper, steadier "
    "subject than plain sampling gives.\n"
    f"{I4VGEN_STAGES} AnimateDiff defaults: 512×512, 16 frames, 25 DDIM steps, guidance 7.5.\n\n"
    f"Models: {NEEDS_ANIMATEDIFF}; {NEEDS_REWARD}.",
    _animatediff(1), 512, 7.5)

I4VGEN_T2V_CHECKPOINT = _i4vgen(
    "i4vgen_t2v_checkpoint",
    "Text-to-video through an anchor image (I4VGen) on AnimateDiff, from an SD1.5 checkpoint file and a motion module "
    "file.\n"
    + SINGLE_FILE_TWIN.format(twin="i4vgen_t2v") +
    f"{I4VGEN_STAGES} AnimateDiff defaults: 512×512, 16 frames, 25 DDIM steps, guidance 7.5.\n\n"
    f"Models: {NEEDS_SD15_FILES}; {NEEDS_REWARD}.",
    _animatediff_checkpoint(1), 512, 7.5)

I4VGEN_MODELSCOPE = _i4vgen(
    "i4vgen_modelscope",
    "I4VGen on ModelScope: the same three stages as i4vgen_t2v on a native video model (256×256, 16 frames, 25 "
    "steps, guidance 9).\n"
    f"{I4VGEN_STAGES}\n\n"
    f"Models: {NEEDS_MODELSCOPE}; {NEEDS_REWARD}.",
    _modelscope(1), 256, 9.0)

I4VGEN_ANCHOR_TO_TI2V_ZERO_LONG = {
    "name": "i4vgen_anchor_to_ti2v_zero_long",
    "note": (
        "Text to a long video in two zero-shot steps: I4VGen's reward-selected anchor image starts a 128-frame "
        "TI2V-Zero video (a composition none of the papers offers).\n"
        "Reward Select Anchor samples 16 candidate images with ModelScope and scores them (Preview Any); "
        "ImageFromBatch takes the winner (anchor_index feeds its batch_index input); Encode Anchor Image → "
        "Repeat-and-Slide Sampler adds 127 frames after it.\n"
        f"{TI2V_ZERO_SETTINGS}\n\n"
        f"Models: {NEEDS_MODELSCOPE}; {NEEDS_REWARD}."
    ),
    "columns": [
        [_modelscope(1), _reward_model(2),
         _prompt(3, 1, "a lighthouse on a cliff above a stormy sea, dramatic clouds, high quality")],
        [{"id": 4, "type": "RewardSelectAnchor", "group": "Anchor image (I4VGen)",
          "inputs": {"backbone": (1, 0), "conditioning": (3, 0), "reward_model": (2, 0), "frames": 16, "width": 256,
                     "height": 256, "steps": 25, "guidance": 9.0, "seed": 42, "num_candidates": 0}},
         {"id": 5, "type": "PreviewAny", "group": "Anchor image (I4VGen)", "title": "Candidate scores",
          "size": [320, 220], "inputs": {"source": (4, 2)}}],
        [{"id": 6, "type": "ImageFromBatch", "group": "Anchor image (I4VGen)",
          "inputs": {"image": (4, 1), "batch_index": (4, 3), "length": 1}},
         {"id": 7, "type": "EncodeAnchorImage", "group": "Anchor image (I4VGen)",
          "inputs": {"backbone": (1, 0), "image": (6, 0), "width": 256, "height": 256, "crop": "center"}}],
        _ti2v_strategies(8),
        [_ti2v_sampler(10, 1, 3, 7, 8, 127)],
        *_save(11, (10, 0), "i4vgen_anchor_to_ti2v_zero_long"),
    ],
}

I4VGEN_IMAGE_TO_VIDEO = {
    "name": "i4vgen_image_to_video",
    "note": (
        "Image-to-video with I4VGen's second stage on AnimateDiff: your image is the anchor, NI-VSDS sets it in "
        "motion and a partial regeneration (denoise 0.8) keeps it recognisable.\n"
        "Load Image → Upscale Image (512×512, centre crop) → Reward Select Anchor with the image as its only "
        "candidate (encoded with the video VAE and repeated into a still 16-frame video; no candidates are "
        "sampled) → NI-VSDS Optimize (16 iterations) → T2V Sampler (denoise 0.8: 20 of the 25 steps, from fresh "
        "noise) → Decode Video Latent → Create Video (8 fps) → Save Video. Lower denoise keeps more of the "
        "image, higher gives more motion.\n\n"
        f"Models: {NEEDS_ANIMATEDIFF}; {NEEDS_REWARD} (it only scores the one image here).\n"
        f"{needs_input(example_inputs.STILL)}"
    ),
    "columns": [
        [_animatediff(1), _reward_model(2),
         _prompt(3, 1, SCENE_PROMPT)],
        [{"id": 4, "type": "LoadImage", "group": "Image", "size": [320, 360],
          "inputs": {"image": example_inputs.STILL}},
         {"id": 5, "type": "ImageScale", "group": "Image",
          "inputs": {"image": (4, 0), "upscale_method": "lanczos", "width": 512, "height": 512, "crop": "center"}}],
        [{"id": 6, "type": "RewardSelectAnchor", "group": "1 · Anchor = your image",
          "inputs": {"backbone": (1, 0), "conditioning": (3, 0), "reward_model": (2, 0), "frames": 16, "width": 512,
                     "height": 512, "steps": 25, "guidance": 7.5, "seed": 42, "num_candidates": 0,
                     "candidates": (5, 0)}}],
        [{"id": 7, "type": "NIVSDSOptimize", "group": "2a · NI-VSDS",
          "inputs": {"backbone": (1, 0), "conditioning": (3, 0), "latent": (6, 0), "steps": 25, "guidance": 7.5,
                     "p": 0.6, "step_sizes": "10,10,10,1", "seed": 42}}],
        [{"id": 8, "type": "T2VSampler", "group": "2b · Regenerate",
          "inputs": {"backbone": (1, 0), "conditioning": (3, 0), "frames": 16, "width": 512, "height": 512,
                     "steps": 25, "guidance": 7.5, "eta": 0.0, "seed": 42, "latent": (7, 0), "denoise": 0.8}}],
        [{"id": 9, "type": "DecodeVideoLatent", "group": "Save",
          "inputs": {"backbone": (1, 0), "latent": (8, 0), "chunk": 4}}],
        *_save(10, (9, 0), "i4vgen_image_to_video"),
    ],
}

# --- Wan (flow matching, causal video VAE): nodes count VIDEO frames, 4k + 1 of them; sizes are multiples of 16 ---
NEEDS_WAN21 = (f"Wan 2.1 T2V 1.3B in diffusers format (Wan-AI/Wan2.1-T2V-1.3B-Diffusers) as the folder "
               f"models/diffusers/{models.WAN21}/ (the folder holding model_index.json); the 14B "
               f"(Wan-AI/Wan2.1-T2V-14B-Diffusers) works the same way from its own folder")
NEEDS_WAN22_A14B = (f"Wan 2.2 T2V A14B in diffusers format (Wan-AI/Wan2.2-T2V-A14B-Diffusers, both experts: "
                    f"transformer/ and transformer_2/) as the folder models/diffusers/{models.WAN22_A14B}/")
WAN_FRAMES = ("Wan counts video frames: 4k + 1 of them (81 = 5 s at 16 fps), because its VAE packs the first frame "
              "alone and then 4 frames per latent frame; width and height are multiples of 16.")
WAN_NEGATIVE = "The negative prompt is left empty, which gives Wan's own default negative prompt."
# Wan 2.1 1.3B's own size (480p; Wan 2.2 A14B's 480p too). The CPU tiers run these workflows smaller through
# tests/comfyui/cpu_overrides.json, which lowers only sizes, frame counts and steps.
WAN_W, WAN_H = 832, 480
WAN_SIZE = f"{WAN_W}×{WAN_H} (480p) is the size Wan 2.1 1.3B was trained at."
WAN21_MEMORY = ("Memory (README, Memory): with the loader's defaults Wan 1.3B at 832×480 peaks at about 11.5 GB "
                "(simulated), most of it the UMT5-XXL text encoder; on an 8 GB GPU set offload to group offload "
                "and vae_precision to bf16 in the loader (about 4.3 GB).")
WAN22_A14B_MEMORY = (f"{WAN_W}×{WAN_H} is Wan 2.2 A14B's 480p size (it also runs at 1280×720, with 3,600 tokens "
                     "per latent frame against 1,560). "
                     "Memory (README, Memory): each A14B expert is 28.6 GB in bf16. On a 24 GB GPU set precision to "
                     "fp8 storage and offload to group offload in the loader (about 9.3 GB, simulated); where both "
                     "experts fit (2 × 14.5 GB with fp8 storage), experts both resident saves swapping them at "
                     "every model call whose window straddles the expert boundary.")
WAN_PROMPT = "a red panda eating bamboo in a sunny forest, soft light, high quality"


NEEDS_WAN21_FILES = (f"Wan 2.1 T2V 1.3B as ComfyUI's single files (Comfy-Org/Wan_2.1_ComfyUI_repackaged, "
                     f"split_files/): models/diffusion_models/{wan_files.WAN21_FILE}, "
                     f"models/text_encoders/{wan_files.UMT5_FP8_FILE} and models/vae/{wan_files.VAE21_FILE}; the 14B "
                     f"(wan2.1_t2v_14B_fp8_scaled.safetensors or _fp16) works the same way")


def _wan(node_id: int, model: str = models.WAN21) -> dict:
    return {"id": node_id, "type": "LoadT2VBackbone", "group": "Model",
            "inputs": {"model": model, "motion_adapter": "none", "dtype": "auto"}}


def _wan_files(node_id: int) -> dict:
    """Wan 2.1 T2V 1.3B from ComfyUI's single files (the fp8-scaled UMT5 most ComfyUI users have)."""
    return {"id": node_id, "type": "LoadWanModelFiles", "group": "Model",
            "inputs": {"model": wan_files.WAN21_FILE, "text_encoder": wan_files.UMT5_FP8_FILE,
                       "vae": wan_files.VAE21_FILE, "dtype": "auto"}}


def _wan_prompt(node_id: int, backbone: int, prompt: str) -> dict:
    return {"id": node_id, "type": "T2VTextEncode", "group": "Prompt", "size": [400, 260],
            "inputs": {"backbone": (backbone, 0), "prompt": prompt, "negative_prompt": ""}}


WAN_T2V_BASIC = {
    "name": "wan_t2v_basic",
    "note": (
        "Plain text-to-video on Wan 2.1 T2V 1.3B: 81 frames (5 s at 16 fps).\n"
        f"Load T2V Backbone → T2V Text Encode → T2V Sampler (81 frames at {WAN_W}×{WAN_H}, 30 flow-matching "
        "steps, guidance 5) → Decode Video Latent → Create Video (16 fps) → Save Video (mp4, h264, in "
        "output/zeroshot_video/).\n"
        f"{WAN_FRAMES} {WAN_NEGATIVE}\n"
        f"{WAN_SIZE} {WAN21_MEMORY}\n\n"
        f"Model: {NEEDS_WAN21}."
    ),
    "columns": [
        [_wan(1)],
        [_wan_prompt(2, 1, WAN_PROMPT)],
        [{"id": 3, "type": "T2VSampler", "group": "Sample",
          "inputs": {"backbone": (1, 0), "conditioning": (2, 0), "frames": 81, "width": WAN_W,
                     "height": WAN_H, "steps": 30, "guidance": 5.0, "seed": 42}}],
        [{"id": 4, "type": "DecodeVideoLatent", "group": "Save", "inputs": {"backbone": (1, 0), "latent": (3, 0)}}],
        *_save(5, (4, 0), "wan_t2v_basic", fps=16),
    ],
}

def _wan_ti2v_zero(name: str, loader: dict, needs: str, twin: str = "") -> dict:
    return {
        "name": name,
        "note": (
            "Image-to-video with TI2V-Zero on Wan 2.1 T2V 1.3B (no image model, no training): your image is frame 0 "
            "and 80 new frames follow it, 81 in all (5 s at 16 fps).\n" + twin +
            f"Load Image → Encode Anchor Image (centre crop to {WAN_W}×{WAN_H}) → Repeat-and-Slide Sampler → "
            "Create Video (16 fps) → Save Video.\n"
            "Model frames 21 (6 latent frames): the queue holds a still clip of the image, and each new latent frame "
            "(4 video frames, so num_frames is a multiple of 4: 80 = 20 latent frames) is sampled with the queue as "
            "its context, then the queue slides on. 10 steps, guidance 5, DDPM-inversion noise init (DDPM Invert "
            "Queue) and 4 resampling rounds (Resample Step): about 50 model calls of 21 frames per new latent "
            "frame. Time grows linearly with num_frames, memory does not; model_frames up to 81 gives each call "
            "more context at about four times the tokens.\n"
            f"{WAN_FRAMES} {WAN_NEGATIVE}\n"
            f"{WAN_SIZE} {WAN21_MEMORY}\n\n"
            f"Model: {needs}.\n{needs_input(example_inputs.STILL)}"
        ),
        "columns": [
            [loader, _wan_prompt(2, 1, SCENE_PROMPT)],
            [{"id": 3, "type": "LoadImage", "group": "Anchor image", "size": [320, 360],
              "inputs": {"image": example_inputs.STILL}},
             {"id": 4, "type": "EncodeAnchorImage", "group": "Anchor image",
              "inputs": {"backbone": (1, 0), "image": (3, 0), "width": WAN_W, "height": WAN_H,
                         "crop": "center"}}],
            _ti2v_strategies(5),
            [{"id": 7, "type": "RepeatAndSlideSampler", "group": "TI2V-Zero",
              "inputs": {"backbone": (1, 0), "conditioning": (2, 0), "anchor": (4, 0), "num_frames": 80,
                         "model_frames": 21, "steps": 10, "guidance": 5.0, "seed": 42, "noise_init": (5, 0),
                         "resample": (6, 0)}}],
            *_save(8, (7, 0), name, fps=16),
        ],
    }


WAN_TI2V_ZERO = _wan_ti2v_zero("wan_ti2v_zero", _wan(1), NEEDS_WAN21)
WAN_TI2V_ZERO_SINGLE_FILES = _wan_ti2v_zero("wan_ti2v_zero_single_files", _wan_files(1), NEEDS_WAN21_FILES,
                                            SINGLE_FILE_TWIN.format(twin="wan_ti2v_zero"))


# 77 video frames = 20 latent frames: the largest window up to Wan's 81-frame clips that lookahead accepts (an even
# number of latent frames).
WAN_FIFO_WINDOW = 77


def _wan_fifo_long(name: str, loader: dict, guidance: float, headline: str, extra_note: str, needs: str,
                   prompt: str, size_and_memory: str, guidance_2: float = -1.0) -> dict:
    """Base clip (grid "fifo", steps = latent frames of the window × partitions) → FIFO queue streamed to disk."""
    latent_window = (WAN_FIFO_WINDOW - 1) // 4 + 1
    size = {"width": WAN_W, "height": WAN_H}
    return {
        "name": name,
        "note": (
            f"{headline}\n"
            f"T2V Sampler makes the base clip ({WAN_W}×{WAN_H}, window_frames {WAN_FIFO_WINDOW} video frames = "
            f"{latent_window} latent frames, steps {latent_window} × 4 partitions = {latent_window * 4}, eta 1, grid "
            f"fifo) → FIFO Queue (1,001 frames, each written to output/zeroshot_video/{name}_frames_NNNNN/ as it "
            f"comes, so an interrupted run keeps its frames) → Create Video (16 fps) → Save Video.\n"
            "FIFO-Diffusion on Wan: the queue holds latent frames at increasing noise levels; every step denoises "
            "windows of it and emits one clean latent frame, decoded into 4 new video frames that continue one "
            "video. The base clip must come from the same backbone with frames = window_frames, grid fifo, steps = "
            "latent frames of the window × partitions, and the same eta and guidance. With lookahead the window "
            "must hold an even number of latent frames: window_frames = 4k + 1 with k + 1 even (5, 13, … 77; 77 "
            "is the largest within Wan's 81-frame clips). "
            "Memory does not grow with the length; keep_frames off keeps only the frames on disk (for very long "
            f"videos at full size).\n{extra_note}{WAN_FRAMES} {WAN_NEGATIVE}\n"
            f"{size_and_memory}\n\n"
            f"Model: {needs}."
        ),
        "columns": [
            [loader, _wan_prompt(2, 1, prompt)],
            [{"id": 3, "type": "T2VSampler", "group": "Base clip",
              "inputs": {"backbone": (1, 0), "conditioning": (2, 0), "frames": WAN_FIFO_WINDOW, **size,
                         "steps": latent_window * 4, "guidance": guidance, "eta": 1.0, "seed": 42, "grid": "fifo",
                         "guidance_2": guidance_2}}],
            [{"id": 4, "type": "FIFOQueueWithImageEmbed", "group": "FIFO-Diffusion", "size": [360, 560],
              "inputs": {"backbone": (1, 0), "conditioning": (2, 0), "base_clip": (3, 0), "num_frames": 1001,
                         "window_frames": WAN_FIFO_WINDOW, "partitions": 4, "lookahead": True, "eta": 1.0,
                         "guidance": guidance, "seed": 42, "window_batch": 1, "stream_to_disk": True,
                         "filename_prefix": f"zeroshot_video/{name}_frames", "guidance_2": guidance_2}}],
            *_save(5, (4, 0), name, fps=16),
        ],
    }


WAN_FIFO_LONG_HEADLINE = ("Long text-to-video at constant memory on Wan 2.1 T2V 1.3B (FIFO-Diffusion): 1,001 frames "
                          "(over a minute at 16 fps).")
WAN_FIFO_LONG_PROMPT = "a drone flight along a rocky coastline at golden hour, waves breaking, high quality"
WAN_FIFO_LONG = _wan_fifo_long("wan_fifo_long", _wan(1), 5.0, WAN_FIFO_LONG_HEADLINE, "", NEEDS_WAN21,
                               WAN_FIFO_LONG_PROMPT, f"{WAN_SIZE} {WAN21_MEMORY}")
WAN_FIFO_LONG_SINGLE_FILES = _wan_fifo_long(
    "wan_fifo_long_single_files", _wan_files(1), 5.0, WAN_FIFO_LONG_HEADLINE,
    SINGLE_FILE_TWIN.format(twin="wan_fifo_long"), NEEDS_WAN21_FILES, WAN_FIFO_LONG_PROMPT,
    f"{WAN_SIZE} {WAN21_MEMORY}")

WAN_22_FIFO_LONG = _wan_fifo_long(
    "wan22_fifo_long", _wan(1, models.WAN22_A14B), 4.0,
    "Long text-to-video at constant memory on Wan 2.2 T2V A14B (FIFO-Diffusion): 1,001 frames.",
    "Wan 2.2 A14B has two experts: the high-noise one denoises the queue's noisier latent frames, the low-noise "
    "one the cleaner ones (the switch is at the model's boundary_ratio), so one queue step runs both, each frame "
    "with its own expert's guidance: guidance 4 (high-noise) and guidance_2 3 (low-noise), Wan 2.2's reference "
    "settings, in both nodes.\n",
    NEEDS_WAN22_A14B,
    "a hot air balloon drifting over snowy mountains at sunrise, cinematic, high quality", WAN22_A14B_MEMORY,
    guidance_2=3.0)

def _wan_anchor_and_nivsds(first: int, backbone: int, conditioning: int, reward: int, frames: int, guidance: float,
                           nivsds_group: str) -> list[list[dict]]:
    """I4VGen's first stages on Wan at 30 steps, nodes ``first`` to ``first + 2``: Reward Select Anchor (its scores
    in Preview Any), then NI-VSDS Optimize on its still video."""
    return [
        [{"id": first, "type": "RewardSelectAnchor", "group": "1 · Anchor image",
          "inputs": {"backbone": (backbone, 0), "conditioning": (conditioning, 0), "reward_model": (reward, 0),
                     "frames": frames, "width": WAN_W, "height": WAN_H, "steps": 30, "guidance": guidance, "seed": 42,
                     "num_candidates": 0}},
         {"id": first + 1, "type": "PreviewAny", "group": "1 · Anchor image", "title": "Candidate scores",
          "size": [320, 220], "inputs": {"source": (first, 2)}}],
        [{"id": first + 2, "type": "NIVSDSOptimize", "group": nivsds_group,
          "inputs": {"backbone": (backbone, 0), "conditioning": (conditioning, 0), "latent": (first, 0), "steps": 30,
                     "guidance": guidance, "p": 0.6, "step_sizes": "10,10,10,1", "seed": 42}}],
    ]


WAN_I4VGEN = {
    "name": "wan_i4vgen",
    "note": (
        "Text-to-video through an anchor image (I4VGen) on Wan 2.1 T2V 1.3B: 81 frames.\n"
        "1. Reward Select Anchor samples candidate images with Wan itself (one per latent frame, 21 for 81 "
        f"frames, at {WAN_W}×{WAN_H}), scores them against the prompt with the reward model (scores in Preview "
        "Any) and turns the best one into a still video (a still clip encoded by Wan's causal VAE); 2a. NI-VSDS "
        "Optimize sets it in "
        "motion (int(30 × 0.6) + 1 = 19 iterations, step sizes 10,10,10,1); 2b. T2V Sampler regenerates from "
        "that latent (denoise 1.0). 30 steps, guidance 5.\n"
        f"{WAN_FRAMES} {WAN_NEGATIVE}\n"
        f"{WAN_SIZE} {WAN21_MEMORY}\n\n"
        f"Models: {NEEDS_WAN21}; {NEEDS_REWARD}."
    ),
    "columns": [
        [_wan(1), _reward_model(2), _wan_prompt(3, 1, "a corgi running along a beach at sunset, high quality")],
        *_wan_anchor_and_nivsds(4, 1, 3, 2, 81, 5.0, "2a · NI-VSDS"),
        [{"id": 7, "type": "T2VSampler", "group": "2b · Regenerate",
          "inputs": {"backbone": (1, 0), "conditioning": (3, 0), "frames": 81, "width": WAN_W,
                     "height": WAN_H, "steps": 30, "guidance": 5.0, "eta": 0.0, "seed": 42, "latent": (6, 0),
                     "denoise": 1.0}}],
        [{"id": 8, "type": "DecodeVideoLatent", "group": "Save",
          "inputs": {"backbone": (1, 0), "latent": (7, 0), "chunk": 4}}],
        *_save(9, (8, 0), "wan_i4vgen", fps=16),
    ],
}


# --- Wan on ComfyUI's own MODEL / CLIP / VAE: the loaders, LoRAs, shift and KSamplers of ComfyUI's Wan templates ---
REPACKAGED_21 = "Comfy-Org/Wan_2.1_ComfyUI_repackaged, split_files/"
NEEDS_NATIVE_TEXT_VAE = (f"models/text_encoders/{wan_files.UMT5_FP8_FILE} and models/vae/{wan_files.VAE21_FILE} "
                         f"({REPACKAGED_21})")
NATIVE_STACK = (
    "The model comes from ComfyUI's own loaders, as its Wan templates wire them (Load Diffusion Model → "
    "LoraLoaderModelOnly → ModelSamplingSD3; Load CLIP → CLIP Text Encode; Load VAE), and Wan MODEL → T2V Backbone "
    "hands that MODEL to the pack's methods: every model call runs through ComfyUI's sampling path, so the LoRA, "
    "the shift, attention patches and a GGUF loader's MODEL apply, and ComfyUI's memory manager loads and frees "
    "the model (no second copy). T2V Conditioning from CONDITIONING takes CLIP Text Encode's prompts.")
NATIVE_LORA = ("4-step distill LoRA: 4 steps at guidance (cfg) 1, which runs the conditional branch only (half the "
               "model calls); shift 5.")


def _unet(node_id: int, name: str) -> dict:
    return {"id": node_id, "type": "UNETLoader", "group": "ComfyUI's loaders",
            "inputs": {"unet_name": name, "weight_dtype": "default"}}


def _clip_loader(node_id: int) -> dict:
    return {"id": node_id, "type": "CLIPLoader", "group": "ComfyUI's loaders",
            "inputs": {"clip_name": wan_files.UMT5_FP8_FILE, "type": "wan", "device": "default"}}


def _vae_loader(node_id: int, name: str = wan_files.VAE21_FILE) -> dict:
    return {"id": node_id, "type": "VAELoader", "group": "ComfyUI's loaders", "inputs": {"vae_name": name}}


def _lora(node_id: int, model: int, name: str) -> dict:
    return {"id": node_id, "type": "LoraLoaderModelOnly", "group": "LoRA and shift",
            "inputs": {"model": (model, 0), "lora_name": name, "strength_model": 1.0}}


def _shift(node_id: int, model: int, shift: float) -> dict:
    return {"id": node_id, "type": "ModelSamplingSD3", "group": "LoRA and shift",
            "inputs": {"model": (model, 0), "shift": shift}}


def _clip_text(node_id: int, clip: int, text: str, title: str) -> dict:
    return {"id": node_id, "type": "CLIPTextEncode", "group": "Prompt", "title": title, "size": [400, 200],
            "inputs": {"text": text, "clip": (clip, 0)}}


def _native_backbone(node_id: int, model: int, vae: int, low_noise: int | None = None) -> dict:
    inputs = {"model": (model, 0), "vae": (vae, 0), "boundary": 0.875, "scheduler": "simple"}
    if low_noise is not None:
        inputs["model_low_noise"] = (low_noise, 0)
    return {"id": node_id, "type": "WanModelBackbone", "group": "The pack on your MODEL", "inputs": inputs}


def _native_conditioning(node_id: int, backbone: int, positive: int, negative: int, prompt: str = "") -> dict:
    return {"id": node_id, "type": "T2VConditioningFromNative", "group": "The pack on your MODEL",
            "inputs": {"backbone": (backbone, 0), "positive": (positive, 0), "negative": (negative, 0),
                       "prompt": prompt}}


NATIVE_FRAMES_21 = 33  # ComfyUI's Wan 2.1 template: 832×480×33
NATIVE_T2V_UNI_PC = {
    "name": "native_wan_t2v_uni_pc",
    "note": (
        "Plain text-to-video with the pack's sampler on your own Wan MODEL: Wan 2.1 T2V 1.3B as ComfyUI's Wan 2.1 "
        f"template loads and samples it ({WAN_W}×{WAN_H}, {NATIVE_FRAMES_21} frames, ModelSamplingSD3 shift 8, 30 "
        "steps, cfg 6, uni_pc, simple).\n"
        f"{NATIVE_STACK}\n"
        "T2V Sampler with sampler uni_pc is KSampler's own uni_pc (same seed, shift and scheduler give KSampler's "
        "output); its LATENT is ComfyUI's, so VAE Decode decodes it. Every other method node of the pack takes the "
        f"same backbone and conditioning.\n{WAN_FRAMES}\n\n"
        f"Models: models/diffusion_models/{wan_files.WAN21_FILE}, {NEEDS_NATIVE_TEXT_VAE}."
    ),
    "columns": [
        [_unet(1, wan_files.WAN21_FILE), _clip_loader(2), _vae_loader(3)],
        [_shift(4, 1, 8.0), _clip_text(5, 2, WAN_PROMPT, "Positive prompt"),
         _clip_text(6, 2, NEGATIVE, "Negative prompt")],
        [_native_backbone(7, 4, 3), _native_conditioning(8, 7, 5, 6)],
        [{"id": 9, "type": "T2VSampler", "group": "Sample",
          "inputs": {"backbone": (7, 0), "conditioning": (8, 0), "frames": NATIVE_FRAMES_21, "width": WAN_W,
                     "height": WAN_H, "steps": 30, "guidance": 6.0, "eta": 0.0, "seed": 42, "sampler": "uni_pc"}}],
        [{"id": 10, "type": "VAEDecode", "group": "Save", "inputs": {"samples": (9, 0), "vae": (3, 0)}}],
        *_save(11, (10, 0), "native_wan_t2v_uni_pc", fps=16),
    ],
}

NATIVE_TI2V_ZERO_LIGHTX2V = {
    "name": "native_wan_ti2v_zero_lightx2v",
    "note": (
        "Image-to-video with TI2V-Zero in 4 steps: Wan 2.1 T2V 14B with the lightx2v step- and CFG-distill LoRA, "
        "from ComfyUI's own loaders. Your image is frame 0 and 80 new frames follow (81, 5 s at 16 fps).\n"
        f"{NATIVE_STACK}\n{NATIVE_LORA}\n"
        f"Load Image → Encode Anchor Image ({WAN_W}×{WAN_H}) → Repeat-and-Slide Sampler (model frames 21, DDPM "
        "inversion, 4 resampling rounds) → Create Video (16 fps) → Save Video.\n"
        f"{WAN_FRAMES}\n\n"
        f"Models: models/diffusion_models/{native_files.WAN21_14B_RELEASED} ({REPACKAGED_21}), the LoRA "
        f"models/loras/{native_files.LORA21_14B_RELEASED} (Kijai/WanVideo_comfy), {NEEDS_NATIVE_TEXT_VAE}.\n"
        f"{needs_input(example_inputs.STILL)}"
    ),
    "columns": [
        [_unet(1, native_files.WAN21_14B_RELEASED), _clip_loader(2), _vae_loader(3)],
        [_lora(4, 1, native_files.LORA21_14B_RELEASED), _shift(5, 4, 5.0),
         _clip_text(6, 2, SCENE_PROMPT, "Positive prompt"), _clip_text(7, 2, NEGATIVE, "Negative prompt")],
        [_native_backbone(8, 5, 3), _native_conditioning(9, 8, 6, 7)],
        [{"id": 10, "type": "LoadImage", "group": "Anchor image", "size": [320, 360],
          "inputs": {"image": example_inputs.STILL}},
         {"id": 11, "type": "EncodeAnchorImage", "group": "Anchor image",
          "inputs": {"backbone": (8, 0), "image": (10, 0), "width": WAN_W, "height": WAN_H, "crop": "center"}}],
        _ti2v_strategies(12),
        [{"id": 14, "type": "RepeatAndSlideSampler", "group": "TI2V-Zero",
          "inputs": {"backbone": (8, 0), "conditioning": (9, 0), "anchor": (11, 0), "num_frames": 80,
                     "model_frames": 21, "steps": 4, "guidance": 1.0, "seed": 42, "noise_init": (12, 0),
                     "resample": (13, 0)}}],
        *_save(15, (14, 0), "native_wan_ti2v_zero_lightx2v", fps=16),
    ],
}

NATIVE_FIFO_WINDOW, NATIVE_FRAMES_PER_LEVEL = 77, 5  # 20 latent frames, 5 per level: 4 levels for 4 steps
NATIVE_WAN22_FIFO_LONG = {
    "name": "native_wan22_fifo_long",
    "note": (
        "Long text-to-video at constant memory (FIFO-Diffusion) on Wan 2.2 T2V A14B with ComfyUI's template "
        "stack: both experts through the lightx2v 4-step LoRAs, shift 5, cfg 1. 1,001 frames.\n"
        f"{NATIVE_STACK}\n"
        "Base clip: the template's two KSampler (Advanced) (4 steps, cfg 1, euler, simple; high-noise expert "
        f"steps 0–2, low-noise 2–4) on Empty Hunyuan Latent Video ({WAN_W}×{WAN_H}, {NATIVE_FIFO_WINDOW} frames = "
        "the FIFO window). Wan MODEL → T2V Backbone takes both experts (high-noise as model, low-noise as "
        "model_low_noise, boundary 0.875: each queue frame goes to its level's expert).\n"
        f"FIFO Queue: window_frames {NATIVE_FIFO_WINDOW} (20 latent frames), partitions 1, frames_per_level "
        f"{NATIVE_FRAMES_PER_LEVEL}: the queue holds each noise level for 5 consecutive latent frames, so it needs "
        "20 / 5 = 4 levels (a 4-step model's) and every step emits 5 latent frames (20 video frames); guidance 1 "
        "runs one branch. Frames go to output/zeroshot_video/native_wan22_fifo_long_frames_NNNNN/ as they come; "
        f"memory does not grow with the length.\n{WAN_FRAMES}\n\n"
        f"Models: models/diffusion_models/{wan_files.A14B_HIGH_FILE} and {wan_files.A14B_LOW_FILE} "
        f"(Comfy-Org/Wan_2.2_ComfyUI_Repackaged), models/loras/{native_files.LORA_HIGH_RELEASED} and "
        f"{native_files.LORA_LOW_RELEASED} (the same repository, split_files/loras/), {NEEDS_NATIVE_TEXT_VAE}."
    ),
    "columns": [
        [_unet(1, wan_files.A14B_HIGH_FILE), _unet(2, wan_files.A14B_LOW_FILE), _clip_loader(3), _vae_loader(4)],
        [_lora(5, 1, native_files.LORA_HIGH_RELEASED), _lora(6, 2, native_files.LORA_LOW_RELEASED),
         _shift(7, 5, 5.0), _shift(8, 6, 5.0)],
        [_clip_text(9, 3, "a hot air balloon drifting over snowy mountains at sunrise, cinematic, high quality",
                    "Positive prompt"), _clip_text(10, 3, NEGATIVE, "Negative prompt")],
        [{"id": 11, "type": "EmptyHunyuanLatentVideo", "group": "Base clip (KSampler)",
          "inputs": {"width": WAN_W, "height": WAN_H, "length": NATIVE_FIFO_WINDOW, "batch_size": 1}},
         {"id": 12, "type": "KSamplerAdvanced", "group": "Base clip (KSampler)", "title": "KSampler (high noise)",
          "inputs": {"model": (7, 0), "add_noise": "enable", "noise_seed": 42, "steps": 4, "cfg": 1.0,
                     "sampler_name": "euler", "scheduler": "simple", "positive": (9, 0), "negative": (10, 0),
                     "latent_image": (11, 0), "start_at_step": 0, "end_at_step": 2,
                     "return_with_leftover_noise": "enable"}},
         {"id": 13, "type": "KSamplerAdvanced", "group": "Base clip (KSampler)", "title": "KSampler (low noise)",
          "inputs": {"model": (8, 0), "add_noise": "disable", "noise_seed": 42, "steps": 4, "cfg": 1.0,
                     "sampler_name": "euler", "scheduler": "simple", "positive": (9, 0), "negative": (10, 0),
                     "latent_image": (12, 0), "start_at_step": 2, "end_at_step": 10000,
                     "return_with_leftover_noise": "disable"}}],
        [_native_backbone(14, 7, 4, low_noise=8), _native_conditioning(15, 14, 9, 10)],
        [{"id": 16, "type": "FIFOQueueWithImageEmbed", "group": "FIFO-Diffusion", "size": [360, 600],
          "inputs": {"backbone": (14, 0), "conditioning": (15, 0), "base_clip": (13, 0), "num_frames": 1001,
                     "window_frames": NATIVE_FIFO_WINDOW, "partitions": 1, "lookahead": True, "eta": 1.0,
                     "guidance": 1.0, "seed": 42, "window_batch": 1, "stream_to_disk": True,
                     "filename_prefix": "zeroshot_video/native_wan22_fifo_long_frames",
                     "frames_per_level": NATIVE_FRAMES_PER_LEVEL}}],
        *_save(17, (16, 0), "native_wan22_fifo_long", fps=16),
    ],
}

NATIVE_I4VGEN_PROMPT = "a corgi running along a beach at sunset, high quality"
NATIVE_I4VGEN_TO_KSAMPLER = {
    "name": "native_wan_i4vgen_to_ksampler",
    "note": (
        "I4VGen on your own Wan MODEL, finished by ComfyUI's KSampler: Wan 2.1 T2V 1.3B with the Wan 2.1 "
        f"template's shift 8, {WAN_W}×{WAN_H}, {NATIVE_FRAMES_21} frames.\n"
        f"{NATIVE_STACK} Its prompt field repeats the positive prompt for the reward model.\n"
        "1. Reward Select Anchor samples candidate images with the MODEL (one per latent frame), scores them with "
        "the reward model (scores in Preview Any) and makes the best one a still video; 2. NI-VSDS Optimize sets it "
        "in motion (30 steps, guidance 6, p 0.6); 3. its LATENT, ComfyUI's own, goes to KSampler (uni_pc, simple, "
        "30 steps, cfg 6, denoise 0.6), which regenerates the video from it, and VAE Decode decodes. A LoRA between "
        "Load Diffusion Model and ModelSamplingSD3 applies to all three.\n"
        f"{WAN_FRAMES}\n\n"
        f"Models: models/diffusion_models/{wan_files.WAN21_FILE}, {NEEDS_NATIVE_TEXT_VAE}; {NEEDS_REWARD}."
    ),
    "columns": [
        [_unet(1, wan_files.WAN21_FILE), _clip_loader(2), _vae_loader(3), _reward_model(4)],
        [_shift(5, 1, 8.0), _clip_text(6, 2, NATIVE_I4VGEN_PROMPT, "Positive prompt"),
         _clip_text(7, 2, NEGATIVE, "Negative prompt")],
        [_native_backbone(8, 5, 3), _native_conditioning(9, 8, 6, 7, NATIVE_I4VGEN_PROMPT)],
        *_wan_anchor_and_nivsds(10, 8, 9, 4, NATIVE_FRAMES_21, 6.0, "2 · NI-VSDS"),
        [{"id": 13, "type": "KSampler", "group": "3 · KSampler",
          "inputs": {"model": (5, 0), "seed": 42, "steps": 30, "cfg": 6.0, "sampler_name": "uni_pc",
                     "scheduler": "simple", "positive": (6, 0), "negative": (7, 0), "latent_image": (12, 0),
                     "denoise": 0.6}},
         {"id": 14, "type": "VAEDecode", "group": "3 · KSampler", "inputs": {"samples": (13, 0), "vae": (3, 0)}}],
        *_save(15, (14, 0), "native_wan_i4vgen_to_ksampler", fps=16),
    ],
}

WORKFLOWS = [T2V_BASIC, TI2V_ZERO_BASIC, TI2V_ZERO_BASIC_CHECKPOINT, TI2V_ZERO_LONG, TI2V_ZERO_PREDICTION, FIFO_LONG,
             FIFO_IMAGE_EMBED_SEEDED, FIFO_IMAGE_TO_VIDEO, FIFO_MULTI_PROMPT, I4VGEN_T2V, I4VGEN_T2V_CHECKPOINT,
             I4VGEN_MODELSCOPE, I4VGEN_ANCHOR_TO_TI2V_ZERO_LONG, I4VGEN_IMAGE_TO_VIDEO, WAN_T2V_BASIC, WAN_TI2V_ZERO,
             WAN_TI2V_ZERO_SINGLE_FILES, WAN_FIFO_LONG, WAN_FIFO_LONG_SINGLE_FILES, WAN_22_FIFO_LONG, WAN_I4VGEN,
             NATIVE_T2V_UNI_PC, NATIVE_TI2V_ZERO_LIGHTX2V, NATIVE_WAN22_FIFO_LONG, NATIVE_I4VGEN_TO_KSAMPLER]
