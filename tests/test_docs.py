"""The generated node reference must match the node classes."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("node_reference", REPO / "tools" / "node_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_node_reference_is_current():
    generator = _generator()
    assert generator.TARGET.read_text() == generator.current(), "run: python tools/node_reference.py"


def test_node_reference_covers_every_node_and_input():
    from zeroshot_video import NODE_CLASS_MAPPINGS
    text = _generator().current()
    for name, cls in NODE_CLASS_MAPPINGS.items():
        assert f"(`{name}`)" in text
        for inputs in cls.INPUT_TYPES().values():
            for input_name in inputs:
                assert f"`{input_name}`" in text
