"""ComfyUI node classes of the pack: thin translators over ``core``."""
from .backbone_nodes import LoadT2VBackbone, T2VTextEncode
from .single_file_nodes import LoadAnimateDiffCheckpoint, LoadWanModelFiles
from .t2v_nodes import DecodeVideoLatent, T2VSampler
from .fifo_nodes import FIFOQueueWithImageEmbed, T2VConditioningAddImage, T2VPromptSchedule
from .ti2v_nodes import DDPMInvertQueue, EncodeAnchorImage, RepeatAndSlideSampler, ResampleStep
from .i4vgen_nodes import LoadRewardModel, NIVSDSOptimize, RewardSelectAnchor
from .native_nodes import T2VConditioningFromNative, WanModelBackbone

NODE_CLASSES = [LoadT2VBackbone, LoadWanModelFiles, LoadAnimateDiffCheckpoint, WanModelBackbone,
                T2VConditioningFromNative, T2VTextEncode, T2VSampler,
                DecodeVideoLatent,
                EncodeAnchorImage, DDPMInvertQueue, ResampleStep, RepeatAndSlideSampler,
                LoadRewardModel, RewardSelectAnchor, NIVSDSOptimize,
                FIFOQueueWithImageEmbed, T2VPromptSchedule, T2VConditioningAddImage]

NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in NODE_CLASSES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LoadT2VBackbone": "Load T2V Backbone",
    "LoadWanModelFiles": "Load Wan (single files)",
    "LoadAnimateDiffCheckpoint": "Load SD1.5 Checkpoint + Motion Module (AnimateDiff)",
    "WanModelBackbone": "Wan MODEL → T2V Backbone",
    "T2VConditioningFromNative": "T2V Conditioning from CONDITIONING",
    "T2VTextEncode": "T2V Text Encode",
    "T2VSampler": "T2V Sampler",
    "DecodeVideoLatent": "Decode Video Latent",
    "EncodeAnchorImage": "Encode Anchor Image",
    "DDPMInvertQueue": "DDPM Invert Queue (noise init)",
    "ResampleStep": "Resample Step (TI2V-Zero)",
    "RepeatAndSlideSampler": "Repeat-and-Slide Sampler (TI2V-Zero)",
    "LoadRewardModel": "Load Reward Model",
    "RewardSelectAnchor": "Reward Select Anchor (I4VGen)",
    "NIVSDSOptimize": "NI-VSDS Optimize (I4VGen)",
    "FIFOQueueWithImageEmbed": "FIFO Queue with Image Embed (FIFO-Diffusion)",
    "T2VPromptSchedule": "T2V Prompt Schedule (multi-prompt)",
    "T2VConditioningAddImage": "T2V Conditioning + Image Embeds",
}
