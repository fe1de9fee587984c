import torch

from zeroshot_video import NODE_CLASS_MAPPINGS


def test_every_node_declares_tooltips_and_description():
    for name, cls in NODE_CLASS_MAPPINGS.items():
        assert cls.DESCRIPTION, name
        spec = cls.INPUT_TYPES()
        for section in spec.values():
            for input_name, (kind, options) in section.items():
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES), name


def test_backbones_load_through_the_node(backbone):
    assert all(net.dtype == torch.float32 for net in backbone.denoising_networks().values())
    assert backbone.schedule.num_train_timesteps == 1000
