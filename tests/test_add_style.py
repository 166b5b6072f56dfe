"""`add-style`, `remove-style`, `rename-style`: new styles on a frozen network, style edits without training."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from conftest import make_painting, make_tiny_model
from typer.testing import CliRunner

from stylize.model import checkpoint
from stylize.cli import app
from stylize.errors import StylizeError
from stylize.train.finetune import ADD_STEPS, STYLE_LR, Overrides, add_styles
from stylize.model.edits import remove_styles, rename_style, style_row_keys
from stylize.model.styles import free_name
from stylize.train.loop import TrainSettings

pytest.importorskip("onnx")
runner = CliRunner()
TINY = dict(batch_size=2, image_size=32, style_size=48, workers=0, checkpoint_every=3, preview_every=10,
            log_every=1, lr=1e-3)
"""Training settings stored in the test model: what add-style inherits (except the learning rate)."""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A 2-style ('a', 'b') tiny network whose metadata says how it was trained."""
    from stylize.train.vgg import load_vgg

    path = make_tiny_model(tmp_path / "model.safetensors", ["a", "b"])
    ckpt = checkpoint.load(path)
    ckpt.training, ckpt.loss_network, ckpt.step = TrainSettings(**TINY).to_dict(), load_vgg().network_id, 7
    ckpt.work_sizes = {"a": 512}
    checkpoint.save(path, ckpt)
    return path


@pytest.fixture
def monet(tmp_path: Path) -> Path:
    return make_painting(tmp_path / "monet.png", seed=2)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _renders(net: torch.nn.Module, n_styles: int) -> list[torch.Tensor]:
    x = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return [net(x, i) for i in range(n_styles)]


def test_add_style_learns_only_the_new_rows(tmp_path, model, monet, photo_dir):
    before = _sha(model)
    out = tmp_path / "plus.safetensors"
    reports = []
    result = add_styles(model, [monet], photo_dir, out, overrides=Overrides(steps=4), device="cpu",
                        on_step=reports.append)
    assert [r.step for r in reports] == [1, 2, 3, 4] and result.step == 4 and not result.interrupted
    assert _sha(model) == before  # the input model is only read
    source, added = checkpoint.load(model), checkpoint.load(out)
    assert added.styles == ["a", "b", "monet"] and added.step == 4
    assert added.work_sizes == {"a": 512}  # the old styles keep their stroke size; the new one has none
    # Settings come from the model's metadata, with add-style's step count and learning rate.
    assert added.training["steps"] == 4 and added.training["batch_size"] == 2 and added.training["image_size"] == 32
    assert added.training["lr"] == STYLE_LR != TINY["lr"]
    old, new = source.net.state_dict(), added.net.state_dict()
    rows = set(style_row_keys(source.net))
    for key, tensor in old.items():
        if key in rows:
            assert torch.equal(new[key][:2], tensor), key
            assert not torch.equal(new[key][2], tensor.mean(0)), f"{key}: the new row did not learn"
        else:
            assert torch.equal(new[key], tensor), key
    # The old styles render bit-identically.
    for a, b in zip(_renders(source.net, 2), _renders(added.net, 3)):
        assert torch.equal(a, b)
    assert [json.loads(line)["step"] for line in out.with_suffix(".log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert (out.with_suffix(".previews") / "step_0000004.jpg").is_file()


def test_add_style_starts_each_painting_from_the_style_nearest_it(tmp_path, model, photo_dir, monkeypatch):
    """add-style's warm start is --style-image's (finetune.warm_start): the nearest style's rows, not the mean."""
    from stylize.train import finetune

    picked: list[int] = []

    def spy(*args, **kwargs) -> int:
        picked.append(nearest(*args, **kwargs))
        return picked[-1]

    nearest = finetune.nearest_style
    monkeypatch.setattr(finetune, "nearest_style", spy)
    out = tmp_path / "plus.safetensors"
    paintings = [make_painting(tmp_path / "p1.png", seed=2), make_painting(tmp_path / "p2.png", seed=7)]
    random_stream = torch.random.get_rng_state()
    add_styles(model, paintings, photo_dir, out, overrides=Overrides(steps=1, lr=1e-7), device="cpu")
    assert torch.equal(torch.random.get_rng_state(), random_stream)  # the run's seeding stays inside it
    old, new = checkpoint.load(model).net.state_dict(), checkpoint.load(out).net.state_dict()
    assert len(picked) == 2
    for key in style_row_keys(checkpoint.load(model).net):
        for i, start in enumerate(picked):  # one step at 1e-7 leaves the start as it was
            assert torch.allclose(new[key][2 + i], old[key][start], atol=1e-5), key


def test_default_settings_and_overrides(tmp_path, model):
    from stylize.train.recipe import quick_settings

    base = TrainSettings(**TINY)
    assert Overrides().apply(base) == base
    changed = Overrides(steps=9, style_weight=5.0, image_size=64).apply(base)
    assert (changed.steps, changed.weights.style, changed.weights.content, changed.image_size) == (9, 5.0, 1.0, 64)
    assert ADD_STEPS < TrainSettings().steps
    cpu, gpu = (quick_settings(base.to_dict(), d) for d in ("cpu", "cuda"))
    assert cpu.image_size < gpu.image_size and cpu.steps < gpu.steps and cpu.style_size == base.style_size


def test_ctrl_c_then_resume(tmp_path, model, monet, photo_dir):
    out = tmp_path / "plus.safetensors"

    def interrupt(report):
        if report.step == 2:
            raise KeyboardInterrupt

    first = add_styles(model, [monet], photo_dir, out, overrides=Overrides(steps=4), device="cpu", on_step=interrupt)
    assert first.interrupted and checkpoint.load(out).step == 2
    steps = []
    done = add_styles(model, [monet], photo_dir, out, device="cpu", resume=True, on_step=lambda r: steps.append(r.step))
    assert steps == [3, 4] and done.step == 4  # the run's own total, from its metadata
    old, new = checkpoint.load(model).net.state_dict(), checkpoint.load(out).net.state_dict()
    assert all(torch.equal(new[k][:2] if k in style_row_keys(checkpoint.load(model).net) else new[k], v)
               for k, v in old.items())
    with pytest.raises(StylizeError, match="already at step 4"):
        add_styles(model, [monet], photo_dir, out, device="cpu", resume=True)
    with pytest.raises(StylizeError, match="holds styles"):
        add_styles(model, [monet], photo_dir, out, name="other", device="cpu", resume=True)
    other = make_tiny_model(tmp_path / "other.safetensors", ["a", "b"], seed=5)
    with pytest.raises(StylizeError, match="not made from"):
        add_styles(other, [monet], photo_dir, out, overrides=Overrides(steps=6), device="cpu", resume=True)


@pytest.mark.parametrize("setup, kwargs, message", [
    (lambda d: make_painting(d / "a.png"), {}, "style 'a' is already in"),
    (lambda d: make_painting(d / "x.png"), {"name": "B"}, "style 'b' is already in"),
    (lambda d: make_painting(d / "x.png"), {"name": "all"}, "reserved"),
    (lambda d: make_painting(d / "x.png"), {"name": "p:q"}, "contains ':'"),
    (lambda d: make_painting(d / "x.png"), {"name": " "}, "cannot be empty"),
    (lambda d: (d / "empty.jpg").write_bytes(b""), {}, "empty.jpg: file is empty"),
    (lambda d: (d / "notes.jpg").write_text("not an image"), {}, "notes.jpg: not a readable image"),
    (lambda d: None, {}, "missing.jpg: no such file"),
])
def test_bad_style_images_and_names(tmp_path, model, photo_dir, setup, kwargs, message):
    setup(tmp_path)
    image = next((p for p in tmp_path.iterdir() if p.suffix in (".png", ".jpg")), tmp_path / "missing.jpg")
    with pytest.raises(StylizeError, match=message) as info:
        add_styles(model, [image], photo_dir, tmp_path / "out.safetensors", overrides=Overrides(steps=1), device="cpu",
                   **kwargs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.safetensors").exists()


def test_refuses_to_write_over_the_model_and_other_misuse(tmp_path, model, monet, photo_dir):
    before = _sha(model)
    cases = [
        (dict(output=model), "is the input model"),
        (dict(output=tmp_path / "nope" / "x.safetensors"), "does not exist"),
        (dict(style_images=[monet, make_painting(tmp_path / "sub" / "monet.png")]), "2 style images named 'monet'"),
        (dict(style_images=[monet, make_painting(tmp_path / "renoir.png")], name="x"), "--name names one style"),
        (dict(style_images=[]), "at least one style image"),
        (dict(content=tmp_path / "no-photos"), "content folder"),
    ]
    for change, message in cases:
        args = dict(model=model, style_images=[monet], content=photo_dir, output=tmp_path / "out.safetensors",
                    overrides=Overrides(steps=1), device="cpu")
        with pytest.raises(StylizeError, match=message):
            add_styles(**{**args, **change})
    assert _sha(model) == before


def test_a_model_trained_with_another_loss_network_needs_it(tmp_path, model, monet, photo_dir):
    ckpt = checkpoint.load(model)
    ckpt.loss_network = "vgg16-torchvision:0123456789ab"
    checkpoint.save(model, ckpt)
    with pytest.raises(StylizeError, match="pass the same --vgg-weights"):
        add_styles(model, [monet], photo_dir, tmp_path / "out.safetensors", overrides=Overrides(steps=1), device="cpu")


def test_remove_and_rename_round_trip(model):
    source = checkpoint.load(model)
    only_b = remove_styles(source, ["a"])
    assert only_b.styles == ["b"] and source.styles == ["a", "b"]
    assert torch.equal(_renders(only_b.net, 1)[0], _renders(source.net, 2)[1])
    renamed = rename_style(rename_style(source, "a", "sunrise"), "sunrise", "a")
    assert renamed.styles == source.styles
    assert all(torch.equal(v, renamed.net.state_dict()[k]) for k, v in source.net.state_dict().items())
    assert rename_style(source, "a", "  dawn ").styles == ["dawn", "b"]


def test_write_edited_is_the_whole_edit_in_one_call(model, tmp_path):
    """remove-style, rename-style and export -o: the output checked, the edit written, the storage kept."""
    from stylize.model.edits import write_edited

    lean = tmp_path / "lean.safetensors"
    write_edited(model, lean, lambda c: c, half=True)
    fewer = tmp_path / "fewer.safetensors"
    assert write_edited(lean, fewer, lambda c: remove_styles(c, ["a"])).styles == ["b"]
    assert checkpoint.load(fewer).styles == ["b"] and checkpoint.stores_half(fewer)  # fp16 stays fp16
    with pytest.raises(StylizeError, match="already exists"):
        write_edited(lean, fewer, lambda c: c)
    with pytest.raises(StylizeError, match="is the input model"):
        write_edited(lean, lean, lambda c: c, overwrite=True)


@pytest.mark.parametrize("edit, message", [
    (lambda c: remove_styles(c, ["zzz"]), "unknown style 'zzz'; this model has: a, b"),
    (lambda c: remove_styles(c, ["a", "b"]), "cannot remove every style"),
    (lambda c: rename_style(c, "zzz", "y"), "unknown style 'zzz'"),
    (lambda c: rename_style(c, "a", "b"), "style 'b' is already in"),
    (lambda c: rename_style(c, "a", "B"), "style 'b' is already in"),
    (lambda c: rename_style(c, "a", ""), "cannot be empty"),
    (lambda c: rename_style(c, "a", "x,y"), "contains ','"),
])
def test_edit_errors(model, edit, message):
    with pytest.raises(StylizeError, match=message):
        edit(checkpoint.load(model))


def test_free_name_avoids_clashes_and_bad_characters():
    assert free_name("monet", ["a"]) == "monet"
    assert free_name("Monet", ["monet", "monet_2"]) == "Monet_3"
    assert free_name("a:b,c", []) == "a_b_c"
    assert free_name("all", []) == "all_2"


def test_cli_add_remove_rename(tmp_path, model, monet, photo_dir):
    plus, fewer, renamed = (tmp_path / f"{n}.safetensors" for n in ("plus", "fewer", "renamed"))
    result = runner.invoke(app, ["add-style", str(model), str(monet), "--content", str(photo_dir), "-o", str(plus),
                                 "--steps", "2", "--workers", "0", "--device", "cpu", "--name", "Monet Sunrise"])
    assert result.exit_code == 0, result.output
    assert f"saved {plus} (step 2)" in result.output
    assert checkpoint.load(plus).styles == ["a", "b", "Monet Sunrise"]
    result = runner.invoke(app, ["remove-style", str(plus), "a", "-o", str(fewer)])
    assert result.exit_code == 0 and "2 styles: b, Monet Sunrise" in result.output
    result = runner.invoke(app, ["rename-style", str(fewer), "Monet Sunrise", "monet", "-o", str(renamed)])
    assert result.exit_code == 0 and checkpoint.load(renamed).styles == ["b", "monet"]


@pytest.mark.parametrize("args, message", [
    (["add-style", "{model}", "{monet}", "--content", "{photos}", "-o", "{model}"], "is the input model"),
    (["add-style", "{model}", "{tmp}/nope.jpg", "--content", "{photos}", "-o", "{tmp}/o.safetensors"], "no such file"),
    (["add-style", "{model}", "{monet}", "--content", "{photos}", "-o", "{tmp}/o.safetensors", "--name", "a"],
     "already in"),
    (["remove-style", "{model}", "zzz", "-o", "{tmp}/o.safetensors"], "unknown style 'zzz'"),
    (["remove-style", "{model}", "a", "b", "-o", "{tmp}/o.safetensors"], "cannot remove every style"),
    (["rename-style", "{model}", "a", "b", "-o", "{tmp}/o.safetensors"], "already in"),
    (["rename-style", "{model}", "a", "c", "-o", "{model}"], "is the input model"),
    (["rename-style", "{tmp}/none.safetensors", "a", "c", "-o", "{tmp}/o.safetensors"], "no such checkpoint"),
])
def test_cli_errors_are_one_line(tmp_path, model, monet, photo_dir, args, message):
    before = _sha(model)
    values = {"{model}": str(model), "{monet}": str(monet), "{photos}": str(photo_dir), "{tmp}": str(tmp_path)}
    for key, value in values.items():
        args = [a.replace(key, value) for a in args]
    result = runner.invoke(app, [*args, "--device", "cpu"] if args[0] == "add-style" else args)
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output and not (tmp_path / "o.safetensors").exists()
    assert _sha(model) == before
