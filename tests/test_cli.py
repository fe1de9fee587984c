"""The command line runs the pack's jobs without ComfyUI."""
import subprocess
import sys

from PIL import Image

from zeroshot_video.cli.commands import main


def test_demo_writes_an_animated_file_and_says_weights_are_random(tmp_path, capsys):
    out = tmp_path / "clip.webp"
    assert main(["demo", "--frames", "3", "--steps", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "RANDOMLY INITIALISED" in printed and "wrote" in printed
    with Image.open(out) as image:
        assert image.n_frames == 3 and image.size == (64, 64)


def test_demo_with_a_model_folder(models_dir, tmp_path, capsys):
    out = tmp_path / "clip.gif"
    model = models_dir / "diffusers" / "stable-diffusion-v1-5"
    adapter = models_dir / "animatediff_models" / "animatediff-motion-adapter-v1-5-2"
    assert main(["demo", "--model", str(model), "--motion-adapter", str(adapter), "--frames", "2", "--steps", "1",
                 "--out", str(out)]) == 0
    assert "RANDOMLY" not in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.n_frames == 2


def test_bad_arguments_give_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["demo", "--width", "60", "--out", str(tmp_path / "x.webp")]) == 2
    assert "multiples of 8" in capsys.readouterr().err


def test_module_entry_point_makes_test_models(tmp_path):
    done = subprocess.run([sys.executable, "-m", "zeroshot_video", "make-test-models", str(tmp_path)],
                          capture_output=True, text=True, check=True)
    assert "text-to-video-ms-1.7b" in done.stdout
    assert (tmp_path / "diffusers" / "text-to-video-ms-1.7b" / "model_index.json").is_file()
    assert (tmp_path / "ipadapter" / "ip-adapter-plus_sd15.safetensors").is_file()
