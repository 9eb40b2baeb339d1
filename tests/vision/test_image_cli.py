"""image-cls and mim end to end on slices of Fashion-MNIST: train, eval, predict, pipeline, resume, MAE -> classifier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli, write_recipe
from image_helpers import NAMES, vit_recipe

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory, fashion):
    """A tiny ViT trained 300 steps on 800 images (with crop + flip; ~15 s), kept for the tests below."""
    from image_helpers import write_idx

    d = tmp_path_factory.mktemp("imgcls")
    x, y = fashion
    write_idx(d / "train-labels-idx1-ubyte.gz", y[:1000])
    train = write_idx(d / "train-images-idx3-ubyte.gz", x[:1000])
    write_idx(d / "t-labels-idx1-ubyte.gz", y[2000:2400])
    test = write_idx(d / "t-images-idx3-ubyte.gz", x[2000:2400])
    recipe = vit_recipe(d, train, train={"max_steps": 300, "eval_every": 100, "save_every": 100, "keep_checkpoints": 5,
                                         "keep_checkpoints_at_end": 5},
                        image={"augment": ["crop", "flip"], "crop_padding": 2})
    r = write_recipe(d / "r.yaml", recipe)
    code, _, err = run_cli("finetune", "-r", str(r))
    assert code == 0, err
    return d, Path(recipe["output_dir"]), test, err


def test_image_classifier_learns(cls_run):
    d, out, test, log = cls_run
    assert "train: 800 images" in log and "10 classes" in log and "augmentation: crop, flip" in log
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] == NAMES and metrics["image_size"] == 28
    code, stdout, err = run_cli("eval", "--model", str(out), "--data", str(test), "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["examples"] == 400 and result["accuracy"] > 0.3  # chance: 0.10 (this tiny run reaches ~0.5)
    assert Path(result["confusion_matrix_png"]).is_file()


def test_pipeline_answers_with_class_names_on_grayscale_images(cls_run, fashion):
    """The saved directory serves HF's pipeline as a user calls it: a grayscale PIL image in, real names out, the
    same probabilities as `ftkit predict` (which reads the PNG files)."""
    from PIL import Image
    from transformers import pipeline

    d, out, _, _ = cls_run
    x, _ = fashion
    files = []
    (d / "new").mkdir(exist_ok=True)
    for i in range(2500, 2504):
        files.append(d / "new" / f"img{i}.png")
        Image.fromarray(x[i]).save(files[-1])
    clf = pipeline("image-classification", model=str(out))
    got = clf([Image.open(f) for f in files], top_k=1)
    assert all(g[0]["label"] in NAMES for g in got)
    code, stdout, err = run_cli("predict", "--model", str(out), *map(str, files))
    assert code == 0, err
    ours = [json.loads(line) for line in stdout.splitlines()]
    assert [o["label"] for o in ours] == [g[0]["label"] for g in got]
    assert [o["probability"] for o in ours] == pytest.approx([g[0]["score"] for g in got], abs=1e-4)
    code, stdout, _ = run_cli("predict", "--model", str(out), str(d / "new"))  # a folder: every image below it
    assert [json.loads(line)["image"] for line in stdout.splitlines()] == sorted(map(str, files))


def test_predict_answers_every_readable_image_and_names_the_others(cls_run, fashion, tmp_path):
    """A broken or missing file costs only its own answer: one `error: FILE: why` line each on stderr, every other
    image answered as it would be alone (same JSON lines, same order), exit 3 at the end; none readable: exit 2."""
    from PIL import Image

    from conftest import fails

    _, out, _, _ = cls_run
    x, _ = fashion
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(x[2600]).save(folder / "0.png")  # grayscale
    Image.fromarray(np.stack([x[2601]] * 3, -1)).resize((40, 40)).save(folder / "2.jpg")  # RGB, another size
    (folder / "1.jpg").write_bytes((folder / "2.jpg").read_bytes()[:200])  # cut short
    bad, missing = tmp_path / "bad.png", tmp_path / "nowhere.png"
    bad.write_bytes(b"not an image")
    code, alone, err = run_cli("predict", "--model", str(out), str(folder / "0.png"), str(folder / "2.jpg"))
    assert code == 0, err
    # batches of 2: [bad, missing] (nothing to answer), [0.png, 1.jpg] (one of two), [2.jpg]
    code, stdout, err = run_cli("predict", "--model", str(out), "--batch-size", "2", str(bad), str(missing), str(folder))
    assert code == 3, err
    assert [l for l in err.splitlines() if l.startswith("error:")] == [
        f"error: {bad}: cannot read this image: cannot identify image file",
        f"error: {missing}: file not found",
        f"error: {folder / '1.jpg'}: cannot read this image: Truncated File Read"]  # Pillow's words for a cut JPEG
    assert "3 of 5 inputs could not be read (the error lines above); the other 2 were answered" in err
    ours, ref = [json.loads(line) for line in stdout.splitlines()], [json.loads(line) for line in alone.splitlines()]
    assert [list(o) for o in ours] == [list(r) for r in ref] == [["image", "label", "probability"]] * 2
    assert [(o["image"], o["label"]) for o in ours] == [(r["image"], r["label"]) for r in ref]
    assert [o["probability"] for o in ours] == pytest.approx([r["probability"] for r in ref], abs=1e-5)
    assert fails("predict", "--model", str(out), str(bad)) == f"error: {bad}: cannot read this image: cannot identify image file"
    assert fails("predict", "--model", str(out), str(bad), str(missing)) == \
        f"error: FILE: none of the 2 inputs could be read (first: {bad}: cannot read this image: cannot identify image file)"


def test_resume_is_exact_for_images(cls_run, tmp_path):
    """Augmentation draws from the batch position: a run resumed at step 100 ends with the same weights."""
    from safetensors.torch import load_file

    d, full, _, _ = cls_run
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    for ckpt in (cut / "checkpoints").iterdir():
        if int(ckpt.name.split("-")[1]) > 100:
            shutil.rmtree(ckpt)
    (cut / "run.json").write_text(json.dumps({"status": "running"}))
    for f in ("model.safetensors", "metrics.json"):
        (cut / f).unlink()
    code, _, err = run_cli("finetune", "-r", str(d / "r.yaml"), f"output_dir={cut}", "--resume")
    assert code == 0, err
    assert "at step 100" in err
    a, b = load_file(full / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def mae_run(tmp_path_factory, fashion):
    from image_helpers import write_idx

    d = tmp_path_factory.mktemp("mae")
    x, _ = fashion
    train = write_idx(d / "u-images-idx3-ubyte.gz", x[:600])  # no labels file: pre-training needs none
    recipe = vit_recipe(d, train, task="mim", train={"max_steps": 40, "eval_every": 20, "lr": 3e-3})
    recipe["model"] = {"model_type": "vit_mae", "config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                                           "intermediate_size": 64, "patch_size": 4, "decoder_hidden_size": 32,
                                                           "decoder_num_hidden_layers": 1, "decoder_num_attention_heads": 2,
                                                           "decoder_intermediate_size": 64}}
    del recipe["data"]["label_map"]
    r = write_recipe(d / "r.yaml", recipe)
    code, _, err = run_cli("pretrain", "-r", str(r))
    assert code == 0, err
    return d, Path(recipe["output_dir"]), err


def test_mae_pretraining_learns_and_draws(mae_run):
    from PIL import Image

    _, out, log = mae_run
    assert "MAE | 49 patches of 4x4 per image, 37 masked" in log
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0]["eval_loss"], rows[-1]["eval_loss"]
    assert last < first  # the validation reconstruction loss falls
    png = Image.open(out / "reconstructions.png")
    assert png.size[0] >= 4 * 112  # four columns of 112-pixel tiles
    assert json.loads((out / "metrics.json").read_text())["reconstructions_png"].endswith("reconstructions.png")
    # the masks of evaluation batches are drawn per batch (masking.eval_seed): same batch size, same masks
    code, stdout, err = run_cli("eval", "--model", str(out), "--json", "--batch-size", "32")
    assert code == 0, err
    assert json.loads(stdout)["loss"] == pytest.approx(last, rel=1e-5)


def test_mae_output_loads_as_a_classifier(mae_run, fashion_idx, tmp_path):
    """Plain transformers: ViTForImageClassification takes the MAE encoder, only the head is new and only the decoder is
    left; ftkit fine-tunes from the MAE run directly."""
    from transformers import ViTForImageClassification

    _, out, _ = mae_run
    model, info = ViTForImageClassification.from_pretrained(str(out), num_labels=10, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert info["unexpected_keys"] and all(k.startswith("decoder.") for k in info["unexpected_keys"])
    recipe = vit_recipe(tmp_path, fashion_idx, train={"max_steps": 10, "eval_every": 10})
    recipe["model"] = {"from_pretrained": str(out)}
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    assert "from the MAE encoder" in err and "dropped), new classification head" in err and "new classification head for 10 classes" in err
    assert "normalisation of the pre-trained model's image processor" in err


def test_simmim_and_lora(fashion_idx, tmp_path):
    recipe = vit_recipe(tmp_path, fashion_idx, task="mim", train={"max_steps": 6, "eval_every": 6})
    recipe["model"]["config"]["patch_size"] = 4
    recipe["masking"] = {"probability": 0.5, "mask_patch_size": 4}
    recipe["output_dir"] = str(tmp_path / "simmim")
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "s.yaml", recipe)))
    assert code == 0, err
    assert "SimMIM" in err and (tmp_path / "simmim" / "reconstructions.png").is_file()
    lora = vit_recipe(tmp_path, fashion_idx, train={"max_steps": 6, "eval_every": 6},
                      finetune={"strategy": "lora", "target_modules": ["q_proj", "v_proj"]})
    lora["model"] = {"from_pretrained": str(tmp_path / "simmim")}
    lora["output_dir"] = str(tmp_path / "lora")
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "l.yaml", lora)))
    assert code == 0, err
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()
    code, stdout, err = run_cli("eval", "--model", str(tmp_path / "lora"), "--data", str(fashion_idx), "--json")
    assert code == 0, err
    assert json.loads(stdout)["examples"] == 1200
