"""open_dataset on tiny fixtures of every layout users bring: VOC root, VOC XML beside the images
or in a sibling folder, YOLO txt (Roboflow and ultralytics exports, with and without data.yaml),
COCO JSON (a file, COCO's own folder, Roboflow's), and the awkward parts of real exports."""
import json
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from tinygrad_yolo.data import DatasetError, open_dataset
from tinygrad_yolo.data.layouts import split_off


def _image(path, size=(40, 30), color=(10, 200, 30), exif_orientation=None, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new(mode, size, color if mode == "RGB" else 128)
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(path, exif=exif)
    else:
        img.save(path)
    return path


def _xml(path, objects, size=(40, 30), filename=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = ["<annotation>"] + ([f"<filename>{filename}</filename>"] if filename else [])
    parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for name, x0, y0, x1, y1 in objects:
        parts.append(f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                     f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
    path.write_text("\n".join(parts + ["</annotation>"]))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ---- VOC ----------------------------------------------------------------------------------------
def test_voc_root_reads_every_split_with_one_class_list(tmp_path):
    for i, (split, name) in enumerate([("train", "dog"), ("train", "cat"), ("val", "bird")]):
        _image(tmp_path / "JPEGImages" / f"{i}.jpg")
        _xml(tmp_path / "Annotations" / f"{i}.xml", [(name, 1, 1, 20, 20)])
    main = tmp_path / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("0\n1\n")
    (main / "val.txt").write_text("2\n")
    (main / "dog_train.txt").write_text("0 1\n1 -1\n")  # a VOC per-class list: not a split
    src = open_dataset(tmp_path)
    assert src.layout == "Pascal VOC root" and sorted(src.splits) == ["train", "val"]
    assert src.classes == ["bird", "cat", "dog"]  # the sorted names found, never VOC's 20
    assert src.train_split() == "train" and src.val_split() == "val"
    assert src.splits["val"].get_annotation(0).labels.tolist() == [0]


def test_voc_names_are_not_expanded_to_the_twenty_voc_classes(tmp_path):
    _image(tmp_path / "images" / "a.jpg")
    _xml(tmp_path / "images" / "a.xml", [("dog", 1, 1, 20, 20)])
    assert open_dataset(tmp_path).classes == ["dog"]


def test_split_ids_and_filenames_cannot_leave_the_data_folder(tmp_path):
    secret = tmp_path / "secret"
    _image(secret / "x.jpg")
    _xml(secret / "x.xml", [("dog", 1, 1, 20, 20)])
    root = tmp_path / "voc"
    _image(root / "JPEGImages" / "a.jpg")
    _xml(root / "Annotations" / "a.xml", [("dog", 1, 1, 20, 20)], filename="../../secret/x.jpg")
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("../../secret/x\n")
    with pytest.raises(DatasetError, match="outside"):
        open_dataset(root)
    # a <filename> with a path is reduced to its bare name: the image is looked for in JPEGImages
    # only
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    assert open_dataset(root).splits["train"].image_path(0) == str(root / "JPEGImages" / "a.jpg")


def test_non_utf8_split_file_is_one_line_naming_it(tmp_path):
    _image(tmp_path / "JPEGImages" / "a.jpg")
    _xml(tmp_path / "Annotations" / "a.xml", [("dog", 1, 1, 20, 20)])
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_bytes(b"a\n\xff\xfe\n")
    with pytest.raises(DatasetError, match=r"train\.txt.*not UTF-8"):
        open_dataset(tmp_path)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    names = tmp_path / "names.txt"
    names.write_bytes(b"dog\n\xe9\n")
    with pytest.raises(DatasetError, match=r"names\.txt.*not UTF-8"):
        open_dataset(tmp_path, classes=str(names))


@pytest.mark.parametrize("xml_folder", ["annotations", "annots", "Annotations", "labels"])
def test_images_with_xml_in_a_sibling_folder(tmp_path, xml_folder):
    _image(tmp_path / "images" / "a.jpg")
    _image(tmp_path / "images" / "b.png")
    _xml(tmp_path / xml_folder / "a.xml", [("nut", 1, 1, 20, 20), ("bolt", 5, 5, 30, 25)])
    _xml(tmp_path / xml_folder / "b.xml", [("nut", 2, 2, 10, 10)])
    src = open_dataset(tmp_path)
    assert src.layout == "VOC XML folder" and list(src.splits) == ["all"]
    assert src.classes == ["bolt", "nut"] and src.splits["all"].num_boxes() == 3


def test_xml_beside_images_with_train_and_test_folders_and_an_empty_image(tmp_path):
    for split in ("train", "test"):
        _image(tmp_path / "images" / split / f"{split}1.jpg")
        _xml(tmp_path / "images" / split / f"{split}1.xml", [("board", 1, 1, 20, 20)])
    _image(tmp_path / "images" / "train" / "empty.jpg")  # no XML: an image without objects
    src = open_dataset(tmp_path)
    assert sorted(src.splits) == ["test", "train"]
    assert src.train_split() == "train" and src.val_split() == "test"
    train = src.splits["train"]
    assert len(train) == 2 and train.num_boxes() == 1
    assert any("no XML" in n for n in src.notes)


def test_xml_matched_through_its_filename_when_the_stems_differ(tmp_path):
    _image(tmp_path / "data" / "photo 1.jpg")
    _xml(tmp_path / "data" / "label_1.xml", [("cup", 1, 1, 20, 20)], filename="photo 1.jpg")
    ds = open_dataset(tmp_path).splits["all"]
    assert ds.num_boxes() == 1 and ds.image_path(0).endswith("photo 1.jpg")


def test_exif_rotated_phone_photo_boxes_follow_the_displayed_image(tmp_path):
    # stored 40 wide x 30 high, orientation 6: displayed 30 wide x 40 high, as the labelling tool
    # showed it
    _image(tmp_path / "images" / "phone.jpg", size=(40, 30), exif_orientation=6)
    _xml(tmp_path / "images" / "phone.xml", [("cup", 1, 1, 30, 20)], size=(30, 40))
    ds = open_dataset(tmp_path).splits["all"]
    assert ds.image_size(0) == (30, 40) and ds[0].image.size == (30, 40)
    np.testing.assert_allclose(ds[0].boxes, [[0, 0, 1, 0.5]])
    # an XML whose <size> is the stored one was labelled on the stored pixels: kept so
    _xml(tmp_path / "images" / "phone.xml", [("cup", 1, 1, 40, 15)], size=(40, 30))
    ds = open_dataset(tmp_path).splits["all"]
    assert ds.image_size(0) == (40, 30) and ds[0].image.size == (40, 30)


# ---- YOLO txt -----------------------------------------------------------------------------------
def _yolo_split(root, split, rows_per_image, names_dir="images", labels_dir="labels",
                layout="roboflow"):
    for k, rows in enumerate(rows_per_image):
        base = root / split / names_dir if layout == "roboflow" else root / names_dir / split
        lab = root / split / labels_dir if layout == "roboflow" else root / labels_dir / split
        _image(base / f"{split}{k}.jpg", size=(64, 48))
        if rows is not None:
            lab.mkdir(parents=True, exist_ok=True)
            (lab / f"{split}{k}.txt").write_text("".join(r + "\n" for r in rows))


def test_roboflow_export_with_dotdot_paths_in_data_yaml(tmp_path):
    # None: no label file
    _yolo_split(tmp_path, "train", [["0 0.5 0.5 0.2 0.2", "1 0.25 0.25 0.1 0.1"], None])
    _yolo_split(tmp_path, "valid", [["1 0.5 0.5 0.3 0.3"]])
    (tmp_path / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\n"
                                        "names: ['red', 'blue']\n")
    src = open_dataset(tmp_path)
    assert src.layout == "YOLO txt (data.yaml)" and src.classes == ["red", "blue"]
    assert src.train_split() == "train" and src.val_split() == "val"
    train = src.splits["train"]
    assert len(train) == 2 and train.num_boxes() == 2
    assert train.get_annotation(1).boxes.shape == (0, 4)
    np.testing.assert_allclose(train.get_annotation(0).boxes[0], [0.4, 0.4, 0.6, 0.6], atol=1e-6)
    assert any("../train/images" in n for n in src.notes)  # the substitution is said
    # the yaml itself works too
    assert open_dataset(tmp_path / "data.yaml").classes == ["red", "blue"]


def test_ultralytics_layout_with_path_key_names_mapping_and_polygons(tmp_path):
    root = tmp_path / "ds"
    polygon = "0 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4"
    _yolo_split(root, "train", [[polygon]], layout="ultralytics")
    _yolo_split(root, "val", [["1 0.5 0.5 0.2 0.2"]], layout="ultralytics")
    (tmp_path / "cfg.yaml").write_text("path: ds\ntrain: images/train\nval: images/val\n"
                                       "names:\n  0: screw\n  1: washer\n")
    src = open_dataset(tmp_path / "cfg.yaml")
    assert src.classes == ["screw", "washer"]
    np.testing.assert_allclose(src.splits["train"].get_annotation(0).boxes[0], [0.1, 0.1, 0.3, 0.4],
                               atol=1e-6)


def test_yolo_folder_without_yaml_takes_names_from_classes_txt(tmp_path):
    _yolo_split(tmp_path, "train", [["0 0.5 0.5 0.2 0.2"]])
    (tmp_path / "classes.txt").write_text("ant\n")
    src = open_dataset(tmp_path)
    assert src.layout == "YOLO txt folder" and src.classes == ["ant"]


@pytest.mark.parametrize("line, needle", [
    ("7 0.5 0.5 0.1 0.1", "class 7 is not one of the 2 classes"),
    ("0 0.5 0.5 0.1", "expected '<class> <cx> <cy> <w> <h>'"),
    ("0 0.5 x 0.1 0.1", "not a number"),
    ("0 0.5 nan 0.1 0.1", "not finite"),
])
def test_bad_label_lines_name_file_and_line(tmp_path, line, needle):
    _yolo_split(tmp_path, "train", [["0 0.5 0.5 0.1 0.1", line]])
    (tmp_path / "data.yaml").write_text("train: train/images\nnames: [a, b]\n")
    with pytest.raises(DatasetError, match=needle) as e:
        open_dataset(tmp_path)
    assert "train0.txt:2" in str(e.value)


def test_yolo_boxes_out_of_the_image_are_clipped_or_dropped_with_a_warning(tmp_path):
    _yolo_split(tmp_path, "train", [["0 0.95 0.5 0.2 0.2", "0 0.5 0.5 0 0.1", "0 0.5 0.5 0.2 0.2",
                                     "0 0.5 0.5 0.2 0.2"]])
    (tmp_path / "data.yaml").write_text("train: train/images\nnames: [a]\n")
    with pytest.warns(UserWarning) as record:
        ds = open_dataset(tmp_path).splits["train"]
    messages = " ".join(str(w.message) for w in record)
    assert "clipping" in messages and "zero or negative area" in messages
    assert "duplicate" in messages
    assert "train0.txt" in messages
    np.testing.assert_allclose(ds.get_annotation(0).boxes,
                               [[0.85, 0.4, 1.0, 0.6], [0.4, 0.4, 0.6, 0.6]], atol=1e-6)


def test_data_yaml_problems_are_one_line_errors(tmp_path):
    (tmp_path / "data.yaml").write_text("train: nowhere/images\nnames: [a]\n")
    with pytest.raises(DatasetError, match="'nowhere/images' does not exist"):
        open_dataset(tmp_path)
    (tmp_path / "data.yaml").write_text("train: [unclosed\n")
    with pytest.raises(DatasetError, match="cannot parse"):
        open_dataset(tmp_path)
    (tmp_path / "data.yaml").write_text("train: t\nnc: 3\nnames: [a, b]\n")
    with pytest.raises(DatasetError, match="nc is 3 but names lists 2"):
        open_dataset(tmp_path)


# ---- COCO ---------------------------------------------------------------------------------------
def _coco(path, files, anns, categories=((1, "cat"), (2, "dog"))):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f, "width": 40, "height": 30}
                   for i, f in enumerate(files)],
        "annotations": [{"id": k, "image_id": i, "category_id": c, "bbox": b, "iscrowd": crowd}
                        for k, (i, c, b, crowd) in enumerate(anns)],
        "categories": [{"id": c, "name": n} for c, n in categories]}))
    return path


def test_coco_file_and_folder_layouts(tmp_path):
    _image(tmp_path / "images" / "a.jpg")
    _image(tmp_path / "images" / "b.jpg")
    ann = _coco(tmp_path / "instances.json", ["a.jpg", "b.jpg"],
                [(0, 1, [0, 0, 20, 15], 0), (1, 2, [10, 10, 10, 10], 0), (1, 1, [0, 0, 5, 5], 1)])
    src = open_dataset(ann)
    assert src.layout == "COCO JSON" and src.classes == ["cat", "dog"]
    ds = src.splits[next(iter(src.splits))]
    np.testing.assert_allclose(ds.get_annotation(0).boxes, [[0, 0, 0.5, 0.5]])
    # iscrowd: evaluation ignores it
    assert ds.get_annotation(1).difficult.tolist() == [False, True]

    coco = tmp_path / "coco"
    for split in ("train2017", "val2017"):
        _image(coco / split / f"{split}.jpg")
        _coco(coco / "annotations" / f"instances_{split}.json", [f"{split}.jpg"],
              [(0, 2, [1, 1, 10, 10], 0)], categories=((0, "animals"), (1, "cat"), (2, "dog")))
    src = open_dataset(coco)
    assert sorted(src.splits) == ["train2017", "val2017"]
    assert src.classes == ["dog"]  # unused categories left out
    assert src.train_split() == "train2017" and src.val_split() == "val2017"


def test_roboflow_coco_export(tmp_path):
    for split in ("train", "valid"):
        _image(tmp_path / split / "x.jpg")
        _coco(tmp_path / split / "_annotations.coco.json", ["x.jpg"], [(0, 1, [1, 1, 10, 10], 0)])
    src = open_dataset(tmp_path)
    assert sorted(src.splits) == ["train", "valid"] and src.val_split() == "valid"


def test_coco_file_names_cannot_leave_the_data_folder(tmp_path):
    _image(tmp_path / "outside.jpg")
    _image(tmp_path / "d" / "images" / "a.jpg")
    _coco(tmp_path / "d" / "ann.json", ["a.jpg", "../../outside.jpg"], [])
    with pytest.raises(DatasetError):
        open_dataset(tmp_path / "d" / "ann.json")


def test_coco_problems_are_one_line_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{" * 100000)
    with pytest.raises(DatasetError, match="bad.json"):
        open_dataset(tmp_path / "bad.json")
    _image(tmp_path / "images" / "a.jpg")
    _coco(tmp_path / "c.json", ["a.jpg"], [(0, 9, [0, 0, 5, 5], 0)])
    with pytest.raises(DatasetError, match="category_id 9"):
        open_dataset(tmp_path / "c.json")
    _coco(tmp_path / "c.json", ["a.jpg"], [(0, 1, [0, 0, "5", 5], 0)])
    with pytest.raises(DatasetError, match="bbox"):
        open_dataset(tmp_path / "c.json")


# ---- layout detection and splits ----------------------------------------------------------------
def test_unknown_folders_and_files_are_named(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        open_dataset(tmp_path / "missing")
    _image(tmp_path / "pics" / "a.jpg")
    with pytest.raises(DatasetError, match=r"no annotations found \(1 images"):
        open_dataset(tmp_path / "pics")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError, match="neither a data.yaml nor a COCO"):
        open_dataset(tmp_path / "notes.txt")


def test_held_out_split_is_seeded_disjoint_and_complete(tmp_path):
    for k in range(10):
        _image(tmp_path / "images" / f"{k}.jpg")
        _xml(tmp_path / "images" / f"{k}.xml", [("a", 1, 1, 20, 20)])
    ds = open_dataset(tmp_path).splits["all"]
    train, val = split_off(ds, 0.2, seed=0)
    assert len(val) == 2 and set(train) | set(val) == set(ds.ids) and not set(train) & set(val)
    assert split_off(ds, 0.2, seed=0) == (train, val) and split_off(ds, 0.2, seed=1) != (train, val)


def test_the_data_folder_is_only_read(tmp_path):
    _yolo_split(tmp_path, "train", [["0 0.5 0.5 0.2 0.2"]])
    (tmp_path / "data.yaml").write_text("train: train/images\nnames: [a]\n")
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    os.chmod(tmp_path, 0o555)
    try:
        _quiet(open_dataset, tmp_path)
    finally:
        os.chmod(tmp_path, 0o755)
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


# ---- the real datasets beside the repository (../shared/data), when present ---------------------
SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared",
                      "data")


@pytest.mark.skipif(not os.path.isdir(SHARED),
                    reason="../shared/data (the development datasets) is not here")
@pytest.mark.parametrize("name, layout, counts, boxes, classes", [
    ("dice", "YOLO txt (data.yaml)", {"train": 200, "val": 50}, 1795, 6),
    ("microcontrollers", "VOC XML folder", {"train": 142, "test": 7}, 177, 4),
])
def test_shared_datasets_read_with_the_counts_their_readme_gives(name, layout, counts, boxes,
                                                                 classes):
    src = _quiet(open_dataset, os.path.join(SHARED, name))
    assert src.layout == layout
    assert {k: len(v) for k, v in src.splits.items()} == counts
    assert sum(ds.num_boxes() for ds in src.splits.values()) == boxes
    assert len(src.classes) == classes


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data (the development datasets) "
                                                      "is not here")
@pytest.mark.parametrize("name", ["dice", "microcontrollers"])
def test_shared_datasets_train_a_few_steps(tmp_path, capsys, name):
    from tinygrad_yolo.cli import main
    run = tmp_path / "run"
    assert main(["train", "--data", os.path.join(SHARED, name), "--out", str(run),
                 "--max-steps", "2", "--width", "0.125", "--batch-size", "4", "--workers", "1",
                 "--no-progress", "--eval-max-images", "4"]) == 0
    out = capsys.readouterr().out
    assert "input" in out and "grid" in out and "schedule" in out  # the recipe chose and said so
    metrics = json.loads((run / "metrics.json").read_text())
    classes = {"dice": 6, "microcontrollers": 4}[name]
    assert metrics["steps"] == 2 and len(metrics["classes"]) == classes
