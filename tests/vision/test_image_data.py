"""Image sources round-trip exactly; augmentation is a function of the batch position; bad files are named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ftkit.errors import UserError
from ftkit.recipe.schema import DataSection
from ftkit.tasks.vision import sources as image_sources
from ftkit.tasks.vision.checks import inspect
from ftkit.tasks.vision.images import Images
from ftkit.tasks.vision.pixels import augment, image_processor, to_pixels
from ftkit.tasks.vision.section import ImageSection

from image_helpers import image_folder, write_idx


def _load(spec, labelled=True, **data):
    return image_sources.load(str(spec), DataSection(train=str(spec), **data), ImageSection(), "data.train", labelled)


def _same(images, x, y=None):
    items = Images(images, 1, 28)
    for i in range(len(x)):
        assert np.array_equal(items.image(i)[..., 0], x[i])
    if y is not None:
        assert [str(v) for v in images.labels] == [str(int(v)) for v in y]


def test_idx_round_trip(fashion_idx, fashion):
    x, y = fashion
    images = _load(fashion_idx)
    assert len(images) == 1200
    _same(images, x[:1200], y[:1200])


def test_folder_round_trip(tmp_path, fashion):
    x, y = fashion
    images = _load(image_folder(tmp_path / "folder", x[:50], y[:50], names=[str(i) for i in range(10)]))
    # ImageFolder order: class folders sorted, files sorted within
    order = sorted(range(50), key=lambda i: (str(int(y[i])), i))
    _same(images, x[order], y[order])


def test_table_of_paths_round_trip(tmp_path, fashion):
    from PIL import Image

    x, y = fashion
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(20):
        Image.fromarray(x[i]).save(tmp_path / "img" / f"{i}.png")
        rows.append({"image": f"img/{i}.png", "label": int(y[i])})
    table = tmp_path / "data.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _same(_load(table), x[:20], y[:20])
    csv = tmp_path / "data.csv"
    csv.write_text("path,label\n" + "".join(f"img/{i}.png,{int(y[i])}\n" for i in range(20)))
    images = image_sources.load(str(csv), DataSection(train=str(csv)), ImageSection(image_column="path"), "data.train", True)
    _same(images, x[:20], y[:20])


def test_semicolon_table_of_paths(tmp_path, fashion, capsys):
    """A table of image paths exported with ';' (issue 36): sniffed from its header, or data.delimiter."""
    from PIL import Image

    x, y = fashion
    (tmp_path / "img").mkdir()
    for i in range(6):
        Image.fromarray(x[i]).save(tmp_path / "img" / f"{i}.png")
    table = tmp_path / "data.csv"
    table.write_text("image;label\n" + "".join(f"img/{i}.png;{int(y[i])}\n" for i in range(6)))
    _same(_load(table), x[:6], y[:6])
    assert "read with the delimiter ';'" in capsys.readouterr().err
    _same(_load(table, delimiter=";"), x[:6], y[:6])
    assert capsys.readouterr().err == ""
    with pytest.raises(UserError, match=r"columns are: image;label \(the file was read as one column; its name holds "
                                         r"';': set data.delimiter"):
        _load(table, delimiter=",")  # told the comma: not sniffed, and the message says why nothing is found


def test_parquet_image_feature_round_trip(tmp_path, fashion):
    import datasets
    from PIL import Image

    x, y = fashion
    ds = datasets.Dataset.from_dict({"image": [Image.fromarray(a) for a in x[:20]], "label": [int(v) for v in y[:20]]})
    ds = ds.cast_column("image", datasets.Image())
    ds.to_parquet(str(tmp_path / "data.parquet"))
    _same(_load(tmp_path / "data.parquet"), x[:20], y[:20])


def test_pixels_match_the_saved_image_processor(fashion):
    """What training feeds the model == what the saved image processor makes of the PIL image a user passes
    (grayscale converted to RGB, as the pipeline does)."""
    from PIL import Image

    x, _ = fashion
    mean, std = [0.286], [0.353]
    ours = to_pixels(x[:4, :, :, None], mean, std)
    proc = image_processor(28, mean, std)
    theirs = proc([Image.fromarray(a).convert("RGB") for a in x[:4]], return_tensors="pt")["pixel_values"]
    assert ours.shape == theirs.shape == (4, 3, 28, 28)
    assert np.allclose(ours.numpy(), theirs.numpy(), atol=1e-5)


def test_augmentation_is_a_function_of_the_batch_position(fashion):
    x = fashion[0][:16, :, :, None]
    a = augment(x, ["crop", "flip"], 4, np.random.default_rng([42, 0, 3, 0, 7]))
    b = augment(x, ["crop", "flip"], 4, np.random.default_rng([42, 0, 3, 0, 7]))
    c = augment(x, ["crop", "flip"], 4, np.random.default_rng([42, 0, 4, 0, 7]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == x.shape and not np.array_equal(a, x)
    flipped = augment(x, ["flip"], 4, np.random.default_rng(0))
    for i in range(16):  # each image is itself or its mirror
        assert np.array_equal(flipped[i], x[i]) or np.array_equal(flipped[i], x[i, :, ::-1])


def test_idx_errors_name_the_file(tmp_path, fashion):
    x, y = fashion
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(bad, y[:10])  # a labels file under an images name: 1 dimension
    with pytest.raises(UserError, match="magic number 00000801 is not an IDX file"):
        _load(bad, labelled=False)
    import gzip

    good = write_idx(tmp_path / "a-images-idx3-ubyte.gz", x[:10])
    raw = gzip.open(good).read()
    with gzip.open(good, "wb") as f:
        f.write(raw[:-100])  # counts say 10 images, 100 bytes are missing
    with pytest.raises(UserError, match=r"a-images-idx3-ubyte.gz: the IDX header says 10 x 28 x 28 = 7,840 bytes.*holds 7,740"):
        _load(good, labelled=False)
    write_idx(tmp_path / "b-images-idx3-ubyte.gz", x[:10])
    write_idx(tmp_path / "b-labels-idx1-ubyte.gz", y[:9])
    with pytest.raises(UserError, match="9 labels for 10 images"):
        _load(tmp_path / "b-images-idx3-ubyte.gz")


def test_every_problem_of_a_folder_in_one_line(tmp_path, fashion):
    """A broken file, an RGB image among grayscale ones and an odd size: one error that counts each problem with
    an example file and gives the recipe lines fixing them together (not one problem per run)."""
    from PIL import Image

    x, y = fashion
    folder = image_folder(tmp_path / "f", x[:7], np.array([0, 0, 0, 1, 1, 1, 1]), names=["a", "b"])
    png = folder / "b" / "00004.png"
    png.write_bytes(png.read_bytes()[:60])  # truncated
    Image.fromarray(np.stack([x[5]] * 3, -1)).save(folder / "b" / "00005.png")  # an RGB image among grayscale ones
    Image.fromarray(x[6][:20]).save(folder / "b" / "00006.png")  # 28 wide, 20 high
    with pytest.raises(UserError) as e:
        inspect({"data.train": _load(folder)}, None, None)
    assert str(e.value) == (
        f"data.train: 3 problems in 7 images: 1 of 7 images cannot be read ({png}: image file is truncated); "
        f"mixed channel counts: 5 grayscale (e.g. {folder}/a/00000.png), 1 RGB (e.g. {folder}/b/00005.png); "
        f"mixed image sizes: 5 are 28x28 (e.g. {folder}/a/00000.png), 1 is 28x20 (e.g. {folder}/b/00006.png); "
        "fix: set image.channels: 1 and image.size: 28 in the recipe (every image is converted to grayscale and "
        "resized to 28x28), and remove or replace the image that cannot be read")
    with pytest.raises(UserError, match=r"^data.train: 1 problem in 7 images: 1 of 7 images cannot be read .*00004.png"):
        inspect({"data.train": _load(folder)}, 1, 28)  # the settings leave the broken file
    png.unlink()
    assert inspect({"data.train": _load(folder)}, 1, 28).channels == 1


def test_image_settings_suggested(tmp_path):
    """The suggestion: the channels most images have (RGB on a tie), the side of the most common size, at most 224;
    sizes past the third are counted; a single size that is not square is a problem too."""
    from PIL import Image

    def folder(name, shapes):
        d = tmp_path / name
        d.mkdir()
        for i, shape in enumerate(shapes):
            Image.fromarray(np.zeros(shape, np.uint8)).save(d / f"{i}.png")
        return d

    photos = folder("photos", [(480, 640, 3), (480, 640, 3), (480, 640), (640, 480, 3), (300, 300, 3), (100, 120), (50, 60)])
    with pytest.raises(UserError) as e:
        inspect({"data.train": _load(photos, labelled=False)}, None, None)
    assert "mixed channel counts: 4 RGB (e.g. " in str(e.value) and ", 3 grayscale (e.g. " in str(e.value)
    assert "mixed image sizes: 3 are 640x480 (e.g. " in str(e.value)
    assert "1 is 300x300 (e.g. " in str(e.value) and ", and 2 images in 2 other sizes;" in str(e.value)
    assert str(e.value).endswith("fix: set image.channels: 3 and image.size: 224 in the recipe (every image is converted "
                                 "to RGB and resized to 224x224)")
    tie = folder("tie", [(8, 8), (8, 8, 3)])
    with pytest.raises(UserError, match=r"fix: set image.channels: 3 in the recipe \(every image is converted to RGB\)$"):
        inspect({"data.train": _load(tie, labelled=False)}, None, None)
    wide = folder("wide", [(20, 28), (20, 28)])
    with pytest.raises(UserError, match=r"^data.train: 1 problem in 2 images: the images are 28x20, not square; "
                                        r"fix: set image.size: 20 in the recipe"):
        inspect({"data.train": _load(wide, labelled=False)}, None, None)
    assert inspect({"data.train": _load(wide, labelled=False)}, None, 20).height == 20


def test_train_and_validation_are_scanned_together(tmp_path, fashion):
    """Channels agree over data.train and data.validation; the problems of both come in the same line. Sizes agree
    within each (validation images of another size are resized to the training size, as before)."""
    from PIL import Image

    from ftkit.recipe import validate
    from ftkit.tasks.vision import data as image_data

    x, _ = fashion
    train = image_folder(tmp_path / "t", x[:4], np.array([0, 0, 1, 1]), names=["a", "b"])
    val = image_folder(tmp_path / "v", x[4:8], np.array([0, 0, 1, 1]), names=["a", "b"])
    for i, f in enumerate(sorted(val.rglob("*.png"))):
        Image.fromarray(np.stack([x[4 + i]] * 3, -1)).resize((32, 32)).save(f)  # data.validation: RGB, 32 x 32
    (val / "a" / "00000.png").write_bytes(b"not a png")
    recipe = validate({"task": "image-cls", "output_dir": str(tmp_path / "r"), "model": {"model_type": "vit"},
                       "data": {"train": str(train), "validation": str(val)}})
    with pytest.raises(UserError) as e:
        image_data.load(recipe, True, log=lambda *_: None)
    assert str(e.value).startswith("data.train + data.validation: 2 problems in 8 images: data.validation: 1 of 4 images "
                                   f"cannot be read ({val}/a/00000.png: cannot identify image file); mixed channel counts: "
                                   f"4 grayscale (e.g. {train}/a/00000.png), 3 RGB (e.g. {val}/a/00001.png); fix: set "
                                   "image.channels: 1 in the recipe")


def test_one_class_folder_is_refused(tmp_path, fashion):
    from ftkit.recipe import validate
    from ftkit.tasks.vision import data as image_data

    x, _ = fashion
    folder = image_folder(tmp_path / "f", x[:6], np.zeros(6, int), names=["shoes"])
    recipe = validate({"task": "image-cls", "output_dir": str(tmp_path / "r"), "model": {"model_type": "vit"},
                       "data": {"train": str(folder)}})
    with pytest.raises(UserError, match=r"only one class \(shoes\); classification needs at least two"):
        image_data.load(recipe, True)


def test_geometry_errors(tmp_path):
    from transformers import ViTConfig

    from ftkit.models.vision import check_geometry
    from ftkit.tasks.vision.mim import simmim_block

    with pytest.raises(UserError, match="patch_size 5 does not divide the image size 28"):
        check_geometry(ViTConfig(image_size=28, patch_size=5, num_channels=3), "model.config")
    with pytest.raises(UserError, match="mask_patch_size 6 is not a multiple of the model's patch size 4"):
        simmim_block(4, 28, 6)
    with pytest.raises(UserError, match="mask_patch_size 8 does not divide the image size 28"):
        simmim_block(4, 28, 8)
    assert simmim_block(4, 32, 8) == 2


def test_train_examples_sample_is_stratified(tmp_path, fashion_idx):
    from ftkit.recipe import validate
    from ftkit.tasks.vision import data as image_data

    recipe = validate({"task": "image-cls", "output_dir": str(tmp_path / "r"), "model": {"model_type": "vit"},
                       "data": {"train": str(fashion_idx), "validation_split": 0.1, "train_examples": 100}})
    data = image_data.load(recipe, True, log=lambda *_: None)
    assert len(data.train) == 100 and len(data.validation) == 120
    counts = np.bincount(data.train.label_ids, minlength=10)
    assert counts.min() >= 8 and counts.max() <= 12  # classes in proportion (about 10 each)
    assert data.channels == 1 and data.size == 28 and abs(data.mean[0] - 0.286) < 0.02


def test_rows_on_a_class_folder_is_refused_it_would_keep_the_first_classes_only(tmp_path, fashion):
    x, y = fashion
    folder = image_folder(tmp_path / "f", x[:6], np.array([0, 0, 0, 1, 1, 1]), names=["a", "b"])
    d = DataSection(train=[{"path": str(folder), "rows": 4}])
    with pytest.raises(UserError, match=r"data.train\[0\].rows: .* class folder by class folder.*data.train_examples: 4"):
        image_sources.load(d.train, d, ImageSection(), "data.train", True)
    d = DataSection(train=[{"path": str(folder), "rows": 6}])  # all of it: nothing left out
    assert len(image_sources.load(d.train, d, ImageSection(), "data.train", True)) == 6


def test_rows_keeps_an_entrys_first_images(fashion_idx, fashion):
    x, y = fashion
    d = DataSection(train=[{"path": str(fashion_idx), "rows": 30}, str(fashion_idx)])
    images = image_sources.load(d.train, d, ImageSection(), "data.train", True)
    assert len(images) == 30 + 1200
    _same(images, np.concatenate([x[:30], x[:1200]]), np.concatenate([y[:30], y[:1200]]))
