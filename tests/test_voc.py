"""VOCDataset on hand-written fixtures: messy images, bad boxes, broken files, class lists."""

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from tinygrad_yolo.data.voc import VOC_CLASSES, DatasetError, VOCDataset, parse_classes


def _xml(objects, size=(40, 30), filename=None):
    """objects: (name, xmin, ymin, xmax, ymax[, difficult]); size None omits <size>."""
    parts = ["<annotation>"]
    if filename:
        parts.append(f"<filename>{filename}</filename>")
    if size is not None:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height>"
                     f"<depth>3</depth></size>")
    for obj in objects:
        name, x0, y0, x1, y1 = obj[:5]
        diff = f"<difficult>{obj[5]}</difficult>" if len(obj) > 5 else ""
        parts.append(f"<object><name>{name}</name>{diff}<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                     f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "\n".join(parts)


class VOCFolder:
    """Builds a VOC layout under tmp_path one image at a time."""

    def __init__(self, root):
        self.root = root
        for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.ids = []

    def add(self, image_id, objects=(), image=None, size=(40, 30), xml=None, ext=".jpg", fmt="JPEG",
            xml_size="same"):
        if image is None:
            image = Image.new("RGB", size, (10, 200, 30))
        if isinstance(image, bytes):
            (self.root / "JPEGImages" / f"{image_id}{ext}").write_bytes(image)
        elif image is not False:
            image.save(self.root / "JPEGImages" / f"{image_id}{ext}", fmt)
        if xml is None:
            xml = _xml(objects, size=size if xml_size == "same" else xml_size)
        if xml is not False:
            (self.root / "Annotations" / f"{image_id}.xml").write_text(xml)
        self.ids.append(image_id)
        return self

    def split(self, name="train"):
        split_file = self.root / "ImageSets" / "Main" / f"{name}.txt"
        split_file.write_text("".join(i + "\n" for i in self.ids))
        return self.root


def test_basic_item_boxes_labels_difficult(tmp_path):
    root = VOCFolder(tmp_path).add("a", [("dog", 1, 1, 40, 30), ("cat", 11, 6, 20, 15, 1)]).split()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = VOCDataset(root)
    # the names found, sorted
    assert len(ds) == 1 and ds.classes == ["cat", "dog"] and ds.ids == ["a"]
    s = ds[0]
    assert isinstance(s.image, Image.Image) and s.image.mode == "RGB" and s.image.size == (40, 30)
    # 1-based inclusive pixels -> [xmin - 1, xmax] / size
    np.testing.assert_array_equal(
        s.boxes, np.array([[0, 0, 1, 1], [10 / 40, 5 / 30, 20 / 40, 15 / 30]], np.float32))
    assert s.boxes.dtype == np.float32 and s.labels.dtype == np.int64 and s.difficult.dtype == bool
    assert s.labels.tolist() == [1, 0]
    assert s.difficult.tolist() == [False, True]
    assert s.id == "a" and s.path.endswith("a.jpg")
    ann = ds.get_annotation(0)
    assert ann.image is None and np.array_equal(ann.boxes, s.boxes)
    with pytest.raises(IndexError):
        ds[1]


def test_grayscale_png_named_jpg_rgba_and_palette_become_rgb(tmp_path):
    pixels = np.arange(30 * 40, dtype=np.uint32).reshape(30, 40).astype(np.uint8)
    grey = Image.fromarray(pixels, "L")
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 0] = 250
    rgba[:, 20:, 3] = 255  # left half fully transparent
    palette = Image.new("P", (40, 30), 3)
    palette.putpalette([0, 0, 0] * 3 + [255, 0, 0] + [0, 0, 0] * 252)
    root = (VOCFolder(tmp_path)
            .add("grey", [("dog", 1, 1, 5, 5)], image=grey, fmt="PNG")  # PNG bytes, .jpg name
            .add("rgba", [("dog", 1, 1, 5, 5)], image=Image.fromarray(rgba, "RGBA"), ext=".png",
                 fmt="PNG")
            .add("pal", [("dog", 1, 1, 5, 5)], image=palette, ext=".png", fmt="PNG")
            .split())
    ds = VOCDataset(root)
    g, a, p = (np.asarray(ds[i].image) for i in range(3))
    assert all(x.shape == (30, 40, 3) and x.dtype == np.uint8 for x in (g, a, p))
    np.testing.assert_array_equal(g[..., 0], np.asarray(grey))
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    assert (a[:, :20] == 127).all()  # transparent -> neutral grey, not the hidden colour
    assert (a[:, 20:] == [250, 0, 0]).all()
    assert (p == [255, 0, 0]).all()


def test_sixteen_bit_grey_is_rescaled_not_clipped(tmp_path):
    img = Image.fromarray(np.full((30, 40), 32896, np.uint16))  # 128 * 257: mid grey in 16 bits
    root = VOCFolder(tmp_path).add("m", [("dog", 1, 1, 5, 5)], image=img, ext=".png",
                                   fmt="PNG").split()
    assert (np.asarray(VOCDataset(root)[0].image) == 128).all()


def test_zero_area_and_outside_boxes_are_dropped_with_warning_partial_ones_clipped(tmp_path):
    objects = [
        ("dog", 5, 5, 5, 20),  # zero width
        ("dog", 10, 10, 8, 20),  # inverted
        ("cat", 45, 5, 60, 20),  # entirely right of the 40-px image
        ("cow", -5, 21, 50, 35),  # sticks out on three sides: clipped
    ]
    root = VOCFolder(tmp_path).add("z", objects).split()
    with pytest.warns(UserWarning) as record:
        ds = VOCDataset(root)
    messages = [str(w.message) for w in record]
    assert sum("zero or negative area" in m for m in messages) == 2
    assert sum("outside the 40x30 image" in m for m in messages) == 1
    assert all("z.xml" in m for m in messages)
    s = ds[0]
    assert s.labels.tolist() == [0] and ds.classes == ["cow"]
    np.testing.assert_allclose(s.boxes, [[0, 20 / 30, 1, 1]])


def test_xml_size_disagreeing_with_image_trusts_the_image(tmp_path):
    root = VOCFolder(tmp_path).add("s", [("dog", 1, 1, 40, 30)], size=(40, 30),
                                   xml_size=(80, 60)).split()
    with pytest.warns(UserWarning, match=r"s\.xml.*80x60.*40x30"):
        ds = VOCDataset(root)
    np.testing.assert_allclose(ds[0].boxes, [[0, 0, 1, 1]])
    assert ds.image_size(0) == (40, 30)


@pytest.mark.parametrize("xml, needle", [
    ("<annotation><size><width>40</width>", "cannot parse annotation file"),
    (_xml([("dog", 1, 1, 5, 5)], size=None), "missing <size>"),
    (_xml([("dog", 1, 1, 5, 5)]).replace("<ymax>5</ymax>", ""), "has no <ymax>"),
    (_xml([("dog", 1, 1, 5, 5)]).replace("<xmin>1</xmin>", "<xmin>one</xmin>"), "not a number"),
    (_xml([("dog", 1, 1, 5, 5)]).replace("<name>dog</name>", ""), "has no <name>"),
    (_xml([("dog", 1, 1, 5, 5)]).replace("<bndbox>", "<box>").replace("</bndbox>", "</box>"),
     "no <bndbox>"),
])
def test_bad_xml_raises_naming_file_or_is_skipped(tmp_path, xml, needle):
    root = VOCFolder(tmp_path).add("good", [("dog", 1, 1, 5, 5)]).add("bad", xml=xml).split()
    with pytest.raises(DatasetError, match=needle) as err:
        VOCDataset(root)
    assert "bad.xml" in str(err.value)
    with pytest.warns(UserWarning, match="bad.xml"):
        ds = VOCDataset(root, skip_bad=True)
    assert ds.ids == ["good"]


def test_corrupt_or_missing_image_raises_naming_file_or_is_skipped(tmp_path):
    root = (VOCFolder(tmp_path)
            .add("good", [("dog", 1, 1, 5, 5)])
            .add("garbage", [("dog", 1, 1, 5, 5)], image=b"this is not a jpeg")
            .split())
    with pytest.raises(DatasetError, match=r"garbage\.jpg"):
        VOCDataset(root)
    with pytest.warns(UserWarning, match=r"garbage\.jpg"):
        assert VOCDataset(root, skip_bad=True).ids == ["good"]

    root2 = VOCFolder(tmp_path / "b").add("gone", [("dog", 1, 1, 5, 5)], image=False).split()
    with pytest.raises(DatasetError, match=r"gone\.jpg.*does not exist"):
        VOCDataset(root2)
    root3 = VOCFolder(tmp_path / "c").add("noxml", xml=False).split()
    with pytest.raises(DatasetError, match=r"noxml\.xml.*does not exist"):
        VOCDataset(root3)
    with pytest.raises(DatasetError, match=r"val\.txt.*does not exist"):
        VOCDataset(root3, split="val")


def test_truncated_image_fails_at_decode_naming_file(tmp_path):
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, "JPEG")
    half = buf.getvalue()[: len(buf.getvalue()) // 2]
    root = VOCFolder(tmp_path).add("cut", [("dog", 1, 1, 5, 5)], image=half,
                                   size=(160, 120)).split()
    ds = VOCDataset(root)  # the header is intact, so construction succeeds
    assert ds.get_annotation(0).labels.tolist() == [0]
    with pytest.raises(DatasetError, match=r"cut\.jpg"):
        ds[0]


def test_unknown_class_names(tmp_path):
    root = (VOCFolder(tmp_path).add("a", [("dog", 1, 1, 5, 5)])
            .add("b", [("unicorn", 1, 1, 5, 5)]).split())
    with pytest.raises(DatasetError, match=r"b\.xml.*unicorn"):
        VOCDataset(root, classes=VOC_CLASSES)
    with pytest.warns(UserWarning, match="unicorn"):
        assert VOCDataset(root, classes=VOC_CLASSES, skip_bad=True).ids == ["a"]
    # No class list: names outside VOC -> the sorted set of names found.
    ds = VOCDataset(root)
    assert ds.classes == ["dog", "unicorn"]
    assert [ds.get_annotation(i).labels.tolist() for i in range(2)] == [[0], [1]]


def test_class_list_from_file_string_list_and_classes_txt(tmp_path):
    root = VOCFolder(tmp_path).add("a", [("b", 1, 1, 5, 5), ("a", 2, 2, 6, 6)]).split()
    names_file = tmp_path / "names.txt"
    names_file.write_text("c\nb\n\n# comment\na\n")
    assert VOCDataset(root, classes=str(names_file)).classes == ["c", "b", "a"]
    assert VOCDataset(root, classes=names_file).get_annotation(0).labels.tolist() == [1, 2]
    assert VOCDataset(root, classes="b, a ,c").get_annotation(0).labels.tolist() == [0, 1]
    assert VOCDataset(root, classes=["a", "b"]).get_annotation(0).labels.tolist() == [1, 0]
    (root / "classes.txt").write_text("b\na\n")  # picked up when classes is None
    assert VOCDataset(root).classes == ["b", "a"]
    with pytest.raises(DatasetError, match="repeats"):
        parse_classes("a,b,a")
    with pytest.raises(DatasetError, match="does not exist"):
        parse_classes(str(tmp_path / "missing.txt"))
    with pytest.raises(DatasetError, match="no class names"):
        parse_classes([])


def test_empty_annotation_and_draft_decoding(tmp_path):
    root = VOCFolder(tmp_path).add("e", [], size=(200, 160)).split()
    s = VOCDataset(root)[0]
    assert s.boxes.shape == (0, 4) and s.labels.shape == (0,) and s.difficult.shape == (0,)
    small = VOCDataset(root, draft_size=50)[0].image  # JPEG decoded at 1/2 scale: both sides >= 50
    assert small.size == (100, 80)
