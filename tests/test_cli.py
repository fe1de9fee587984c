"""The command line runs the pack's jobs without ComfyUI."""
import json
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from zeroshot_video import client
from zeroshot_video.cli import commands
from zeroshot_video.testing import standin_files_sd15 as sd15_files
from zeroshot_video.testing import standin_files_wan as wan_files
from zeroshot_video.testing import standin_models
from zeroshot_video.cli.commands import main
from zeroshot_video.core.denoiser import Denoiser

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize("method", ["t2v", "ti2v-zero"])
def test_demo_with_wan_single_files_as_comfyui_keeps_them(models_dir, tmp_path, capsys, method):
    out = tmp_path / "clip.webp"
    argv = ["demo", "--method", method, "--model", str(models_dir / "diffusion_models" / wan_files.WAN21_FILE),
            "--text-encoder", str(models_dir / "text_encoders" / wan_files.UMT5_FP8_FILE),
            "--vae", str(models_dir / "vae" / wan_files.VAE21_FILE), "--width", "32", "--height", "32",
            "--steps", "2", "--out", str(out)]
    argv += ["--frames", "5"] if method == "t2v" else ["--frames", "4", "--model-frames", "5", "--resample", "0"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "RANDOMLY" not in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.n_frames == 5 and image.size == (32, 32)


def test_demo_with_an_sd15_checkpoint_and_a_motion_module_file(models_dir, tmp_path, capsys):
    out = tmp_path / "clip.gif"
    assert main(["demo", "--model", str(models_dir / "checkpoints" / sd15_files.CHECKPOINT),
                 "--motion-adapter", str(models_dir / "animatediff_models" / sd15_files.MOTION_MODULE_V3),
                 "--frames", "2", "--steps", "1", "--out", str(out)]) == 0, capsys.readouterr().err
    with Image.open(out) as image:
        assert image.n_frames == 2


def test_single_file_models_without_their_companions_are_refused_by_flag(models_dir, tmp_path, capsys,
                                                                         monkeypatch):
    """Each refused before anything loads."""
    for loader in ("zeroshot_video.core.families.wan.files.load_wan_files",
                   "zeroshot_video.core.families.unet.sd15_checkpoint.load_sd15_checkpoint",
                   "zeroshot_video.cli.commands.load_backbone"):
        monkeypatch.setattr(loader, lambda *a, **k: pytest.fail("a model was loaded before the flags were checked"))
    wan = str(models_dir / "diffusion_models" / wan_files.WAN21_FILE)
    high_noise = str(models_dir / "diffusion_models" / wan_files.A14B_HIGH_FILE)
    encoder = str(models_dir / "text_encoders" / wan_files.UMT5_FP8_FILE)
    vae = str(models_dir / "vae" / wan_files.VAE21_FILE)
    checkpoint = str(models_dir / "checkpoints" / sd15_files.CHECKPOINT)
    module = str(models_dir / "animatediff_models" / sd15_files.MOTION_MODULE_V3)
    folder = str(models_dir / "diffusers" / "text-to-video-ms-1.7b")
    cases = [
        (["--model", wan], ("Wan diffusion model", "--text-encoder and --vae")),
        (["--model", wan, "--text-encoder", encoder], ("add --vae",)),
        (["--model", wan, "--text-encoder", encoder, "--vae", vae, "--motion-adapter", module],
         ("drop --motion-adapter",)),
        (["--model", wan, "--text-encoder", encoder, "--vae", str(tmp_path / "no.safetensors")], ("--vae", "no such")),
        (["--model", checkpoint], ("Stable Diffusion 1.5", "--motion-adapter")),
        (["--model", checkpoint, "--motion-adapter", module, "--vae", vae], ("drop --vae",)),
        (["--model", vae], ("a Wan 2.1 VAE", "not a model the demo runs")),
        (["--model", folder, "--vae", vae], ("--vae go with a Wan diffusion model file",)),
        (["--vae", vae], ("--vae go with a Wan diffusion model file",)),
        (["--model", high_noise.replace("high_noise", "low_noise"), "--model-2", high_noise, "--text-encoder",
          encoder, "--vae", vae], ("--model and --model-2 are swapped", wan_files.A14B_LOW_FILE)),
    ]
    for flags, needles in cases:
        _fails(["demo", *flags, "--out", str(tmp_path / "x.webp")], capsys, *needles)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(Path(wan).read_bytes()[:-100])
    _fails(["demo", "--model", str(cut), "--text-encoder", encoder, "--vae", vae], capsys, "--model", "cut short")


def test_bad_arguments_give_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["demo", "--width", "60", "--out", str(tmp_path / "x.webp")]) == 2
    assert "multiples of 8" in capsys.readouterr().err


def test_module_entry_point_makes_test_models(tmp_path):
    done = subprocess.run([sys.executable, "-m", "zeroshot_video", "make-test-models", str(tmp_path)],
                          capture_output=True, text=True, check=True)
    assert "text-to-video-ms-1.7b" in done.stdout
    assert (tmp_path / "diffusers" / "text-to-video-ms-1.7b" / "model_index.json").is_file()
    assert (tmp_path / "ipadapter" / "ip-adapter-plus_sd15.safetensors").is_file()


# --- every failure is one line on stderr, exit 2, before any work where it can be checked first ------------------
def _fails(argv, capsys, *needles):
    """Runs the CLI, expects exit 2 and one stderr line naming ``needles``; returns (stdout, the line)."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return captured.out, lines[0]


def _nothing_loaded(out):
    assert "RANDOMLY" not in out  # the stand-in backbone was never written or loaded


@pytest.mark.parametrize("method", ["t2v", "i4vgen"])
def test_uni_pc_samples_on_wan(models_dir, tmp_path, capsys, method):
    """--sampler uni_pc on the Wan 2.1 folder stand-in writes the frames asked for, other frames than euler's."""
    import numpy as np
    model = models_dir / "diffusers" / standin_models.WAN21
    frames = {}
    for sampler in ("euler", "uni_pc"):
        out = tmp_path / f"{sampler}.webp"
        assert main(["demo", "--method", method, "--model", str(model), "--frames", "5", "--width", "32",
                     "--height", "32", "--steps", "3", "--sampler", sampler, "--out", str(out)]) == 0
        with Image.open(out) as image:
            assert image.n_frames == 5 and image.size == (32, 32)
            frames[sampler] = np.asarray(image.convert("RGB"))
    assert not np.array_equal(frames["euler"], frames["uni_pc"])


@pytest.mark.parametrize("argv, needles", [
    (["--steps", "0"], ["--steps 0", "1..999"]),
    (["--method", "i4vgen", "--steps", "0"], ["--steps 0"]),
    (["--method", "ti2v-zero", "--steps", "0"], ["--steps 0"]),
    (["--fps", "0"], ["--fps 0", "1..100"]),
    (["--guidance", "nan"], ["--guidance nan"]),
    (["--method", "fifo", "--window-frames", "0"], ["--window-frames 0"]),
    (["--method", "i4vgen", "--step-sizes", "1,x"], ["--step-sizes"]),
    (["--device", "gpu"], ["--device gpu"]),
    (["--method", "t2v", "--image", "x.png"], ["--image", "ti2v-zero"]),
    (["--method", "fifo", "--steps", "25"], ["--steps", "not fifo"]),
    (["--method", "fifo", "--sampler", "uni_pc"], ["--sampler", "not fifo"]),
    (["--sampler", "uni_pc", "--eta", "0.5"], ["--sampler uni_pc", "--eta"]),
])
def test_bad_values_are_refused_before_anything_is_loaded(argv, needles, tmp_path, capsys):
    out, _ = _fails(["demo", *argv, "--out", str(tmp_path / "x.webp")], capsys, *needles)
    _nothing_loaded(out)
    assert not (tmp_path / "x.webp").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_only_machine_is_a_clear_error(tmp_path, capsys):
    out, line = _fails(["demo", "--device", "cuda", "--out", str(tmp_path / "x.webp")], capsys, "--device cuda")
    assert "--device cpu" in line
    _nothing_loaded(out)


@pytest.mark.parametrize("method", ["t2v", "i4vgen"])
def test_one_call_methods_refuse_more_frames_than_one_call_holds(method, tmp_path, capsys):
    out, _ = _fails(["demo", "--method", method, "--frames", "100000", "--out", str(tmp_path / "x.webp")], capsys,
                    "--frames 100000", "at most 64", "--method fifo", "--method ti2v-zero")
    _nothing_loaded(out)


@pytest.mark.parametrize("argv, needles", [
    (["--window-frames", "5"], ["--window-frames", "--no-lookahead"]),
    (["--window-frames", "64", "--partitions", "16"], ["--window-frames × --partitions"]),
])
def test_a_fifo_window_the_model_cannot_take_is_refused_before_any_model_call(argv, needles, tmp_path, capsys,
                                                                              monkeypatch):
    """Whether lookahead can split a window, and how many steps it makes, depends on the model's frame rule
    (Wan: 77 video frames = 20 latent frames): refused once the model is loaded, before it runs."""
    calls = []
    monkeypatch.setattr(Denoiser, "__call__", lambda self, *a: calls.append(1))
    _fails(["demo", "--method", "fifo", *argv, "--out", str(tmp_path / "x.webp")], capsys, *needles)
    assert calls == [] and not (tmp_path / "x.webp").exists()


def test_animatediff_frame_limit_names_the_flag(models_dir, tmp_path, capsys):
    model = models_dir / "diffusers" / "stable-diffusion-v1-5"
    adapter = models_dir / "animatediff_models" / "animatediff-motion-adapter-v1-5-2"
    _fails(["demo", "--model", str(model), "--motion-adapter", str(adapter), "--frames", "33",
            "--out", str(tmp_path / "x.webp")], capsys, "--frames 33", "at most 32", "--method fifo")


@pytest.mark.parametrize("method, advice", [("fifo", "--frames-dir"), ("ti2v-zero", "--method fifo --frames-dir")])
def test_frames_that_do_not_fit_in_memory_are_refused_before_sampling(method, advice, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(commands, "available_memory", lambda: 10 ** 6)
    calls = []
    monkeypatch.setattr(Denoiser, "__call__", lambda self, *a: calls.append(1))
    _fails(["demo", "--method", method, "--frames", "100", "--out", str(tmp_path / "x.webp")], capsys,
           "--frames 100", "GB", advice)
    assert not calls


def test_fifo_frames_dir_streams_pngs_and_keeps_none(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(commands, "available_memory", lambda: 10 ** 6)  # kept frames would not fit; none are kept
    folder = tmp_path / "frames"
    assert main(["demo", "--method", "fifo", "--frames", "3", "--frames-dir", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"frame_00000{i}.png" for i in range(3)]
    assert "wrote 3 frames" in capsys.readouterr().out
    _fails(["demo", "--method", "fifo", "--frames", "3", "--frames-dir", str(folder)], capsys, "empty folder")


def test_missing_or_wrong_model_paths_are_named_by_their_flag(models_dir, tmp_path, capsys):
    a_file = tmp_path / "model.safetensors"
    a_file.write_bytes(b"")
    out, _ = _fails(["demo", "--model", str(tmp_path / "no" / "such"), "--out", str(tmp_path / "x.webp")], capsys,
                    "--model", "no such folder or file")
    _nothing_loaded(out)
    _fails(["demo", "--model", str(a_file)], capsys, "--model", "is empty")
    not_safetensors = tmp_path / "model.ckpt"
    not_safetensors.write_bytes(b"x")
    _fails(["demo", "--model", str(not_safetensors)], capsys, "--model", "not .safetensors")
    sd15 = str(models_dir / "diffusers" / "stable-diffusion-v1-5")
    _fails(["demo", "--model", sd15, "--motion-adapter", str(tmp_path / "mm.safetensors")], capsys,
           "--motion-adapter", "no such file")
    _fails(["demo", "--model", sd15], capsys, "--motion-adapter", "Stable Diffusion 1.5")
    adapter = str(models_dir / "animatediff_models" / "animatediff-motion-adapter-v1-5-2")
    _fails(["demo", "--model", str(models_dir / "diffusers" / "text-to-video-ms-1.7b"), "--motion-adapter", adapter],
           capsys, "drop --motion-adapter")
    _fails(["demo", "--motion-adapter", adapter], capsys, "--motion-adapter needs --model")
    _fails(["demo", "--method", "ti2v-zero", "--image", str(tmp_path / "first_frame.png")], capsys,
           "--image", "no such file")
    _fails(["demo", "--method", "i4vgen", "--reward-model", str(tmp_path / "PickScore_v1")], capsys,
           "--reward-model", "no such folder")


def test_the_output_file_is_checked_before_generating(tmp_path, capsys, monkeypatch):
    out, _ = _fails(["demo", "--out", str(tmp_path / "clip.avi")], capsys, "--out", ".avi", ".webp")
    _nothing_loaded(out)
    (tmp_path / "file").write_text("")
    _fails(["demo", "--out", str(tmp_path / "file" / "clip.gif")], capsys, "is a file, not a folder")
    _fails(["demo", "--out", str(tmp_path)], capsys, "is a folder")
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV not installed
    out, _ = _fails(["demo", "--out", str(tmp_path / "clip.mp4")], capsys, "PyAV", ".webp")
    _nothing_loaded(out)


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    def broken(args, scratch):
        raise AssertionError("Torch not compiled with CUDA enabled")

    monkeypatch.setattr(commands, "_backbone", broken)
    _fails(["demo", "--out", str(tmp_path / "x.webp")], capsys, "AssertionError", "--debug")
    with pytest.raises(AssertionError):
        main(["demo", "--debug", "--out", str(tmp_path / "x.webp")])
    with pytest.raises(AssertionError):
        main(["--debug", "demo", "--out", str(tmp_path / "x.webp")])


# --- Ctrl-C keeps what was made ------------------------------------------------------------------------------------
def _interrupt_at_call(monkeypatch, call):
    """Ctrl-C arrives during the ``call``-th model evaluation."""
    count = {"n": 0}
    real = Denoiser.__call__

    def evaluate(self, *args):
        count["n"] += 1
        if count["n"] == call:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(Denoiser, "__call__", evaluate)


def test_ctrl_c_in_ti2v_zero_writes_the_frames_made_so_far(tmp_path, capsys, monkeypatch):
    _interrupt_at_call(monkeypatch, 4)  # one evaluation per new frame: 3 finished
    out = tmp_path / "clip.webp"
    assert main(["demo", "--method", "ti2v-zero", "--frames", "5", "--steps", "1", "--resample", "0",
                 "--model-frames", "2", "--out", str(out)]) == 130
    assert capsys.readouterr().err.splitlines() == [f"interrupted: wrote 4 of 6 frames to {out}."]
    with Image.open(out) as image:
        assert image.n_frames == 4  # the image and the 3 new frames


def test_ctrl_c_in_fifo_writes_the_frames_made_so_far(tmp_path, capsys, monkeypatch):
    _interrupt_at_call(monkeypatch, 5)  # 2 base-clip steps, no warm-up, then about a frame per evaluation
    out = tmp_path / "clip.gif"
    assert main(["demo", "--method", "fifo", "--frames", "6", "--window-frames", "2", "--partitions", "1",
                 "--out", str(out)]) == 130
    [line] = capsys.readouterr().err.splitlines()
    written = int(line.split("wrote ")[1].split(" of")[0])
    assert 0 < written < 6 and line == f"interrupted: wrote {written} of 6 frames to {out}."
    with Image.open(out) as image:
        assert image.n_frames == written


def test_ctrl_c_in_one_call_methods_says_no_frame_was_finished(tmp_path, capsys, monkeypatch):
    _interrupt_at_call(monkeypatch, 2)
    out = tmp_path / "clip.webp"
    assert main(["demo", "--frames", "3", "--steps", "3", "--out", str(out)]) == 130
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("interrupted: no frame was finished") and not out.exists()


def test_ctrl_c_from_the_terminal_in_a_separate_process(tmp_path):
    """A real SIGINT, wherever it lands; stderr holds the one line and none of the libraries' noise."""
    out = tmp_path / "clip.webp"
    process = subprocess.Popen([sys.executable, "-u", "-m", "zeroshot_video", "demo", "--method", "fifo",
                                "--frames", "200", "--window-frames", "2", "--partitions", "1", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "iteration 3/" not in seen:
        char = process.stdout.read(1)
        assert char, seen
        seen += char
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    [line] = err.splitlines()
    written = int(line.split("wrote ")[1].split(" of")[0])
    with Image.open(out) as image:
        assert image.n_frames == written > 0


def test_submit_keeps_its_own_exit_codes(tmp_path, capsys, monkeypatch):
    assert main(["submit", str(tmp_path / "missing.json")]) == client.REJECTED
    workflow = tmp_path / "api.json"
    workflow.write_text(json.dumps({"1": {"class_type": "T2VSampler", "inputs": {}}}))
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert main(["submit", str(workflow), "--server", f"http://127.0.0.1:{port}", "--timeout", "5"]) == \
        client.UNREACHABLE

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(client, "submit", interrupted)
    capsys.readouterr()
    assert main(["submit", str(workflow)]) == client.FAILED
    assert capsys.readouterr().err.splitlines() == ["interrupted"]


# --- help and README ---------------------------------------------------------------------------------------------
def test_demo_help_shows_defaults_and_ranges(capsys):
    with pytest.raises(SystemExit) as done:
        main(["demo", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("[1..999] (default: 10)", "[1..100] (default: 8)", "(default: demo.webp)", "at most 64",
                  "--frames-dir", "130"):
        assert shown in text, shown


def _readme_demo_lines():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Without ComfyUI"):]
    block = section[section.index("```bash"):section.index("```", section.index("```bash") + 3)]
    return [shlex.split(line, comments=True)[3:] for line in block.splitlines()
            if line.startswith("python -m zeroshot_video demo") and "/path/to/" not in line]


@pytest.mark.parametrize("argv", _readme_demo_lines(), ids=" ".join)
def test_readme_examples_run_as_written(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the README runs them from the checkout
    out = tmp_path / Path(argv[argv.index("--out") + 1] if "--out" in argv else "demo.webp").name
    fast = ["--frames", "1", "--steps", "1"] + (["--resample", "0", "--model-frames", "2"]
                                                  if "ti2v-zero" in argv else [])
    assert main([*argv, *fast, "--out", str(out)]) == 0, capsys.readouterr().err
    assert out.is_file()


FAMILY_FOLDERS = {"modelscope": ("text-to-video-ms-1.7b", None), "animatediff": ("stable-diffusion-v1-5",
                                                                                 "animatediff-motion-adapter-v1-5-2"),
                  "wan21": ("Wan2.1-T2V-1.3B-Diffusers", None), "wan22_a14b": ("Wan2.2-T2V-A14B-Diffusers", None),
                  "wan22_ti2v_5b": ("Wan2.2-TI2V-5B-Diffusers", None)}
# (method, extra flags, frames the file holds for the UNet families, for Wan): the defaults are the family's own
# (Wan: 9 frames, a 17-frame model call, a 5-frame FIFO window of 2 latent frames), and FIFO's lookahead runs
CLI_RUNS = {"t2v": ([], 8, 9), "ti2v-zero": (["--resample", "0"], 9, 9), "fifo": (["--partitions", "1"], 8, 9),
            "i4vgen": (["--candidates", "2"], 8, 9)}


@pytest.mark.parametrize("family", list(FAMILY_FOLDERS))
@pytest.mark.parametrize("method", list(CLI_RUNS))
def test_every_method_runs_on_every_family_from_the_command_line(models_dir, tmp_path, capsys, family, method):
    """The command line takes what the nodes take, with defaults valid for the family: the file has the frames
    and size asked for, and progress names the family's network."""
    folder, adapter = FAMILY_FOLDERS[family]
    flags, unet_frames, wan_frames = CLI_RUNS[method]
    out = tmp_path / "clip.webp"
    args = ["demo", "--method", method, "--model", str(models_dir / "diffusers" / folder), "--width", "32",
            "--height", "32", "--out", str(out), *flags]
    if adapter:
        args += ["--motion-adapter", str(models_dir / "animatediff_models" / adapter)]
    if method != "fifo":
        args += ["--steps", "1"]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    with Image.open(out) as image:
        assert image.n_frames == (wan_frames if family.startswith("wan") else unet_frames)
        assert image.size == (32, 32)
    if method != "fifo":
        assert ("transformer" if family.startswith("wan") else "UNet") in printed
