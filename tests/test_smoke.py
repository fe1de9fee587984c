import torch

from zeroshot_video import NODE_CLASS_MAPPINGS


def test_every_node_declares_tooltips_and_description():
    for name, cls in NODE_CLASS_MAPPINGS.items():
        assert cls.DESCRIPTION, name
        spec = cls.INPUT_TYPES()
        for section_name, section in spec.items():
            for input_name, declared in section.items():
                if section_name == "hidden" and declared in ("PROMPT", "UNIQUE_ID"):
                    continue  # ComfyUI's own hidden kinds are plain names: ComfyUI compares them as strings
                kind, options = declared
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES), name


def test_backbones_load_through_the_node(backbone):
    assert all(net.dtype == torch.float32 for net in backbone.denoising_networks().values())
    assert backbone.schedule.num_train_timesteps == 1000
