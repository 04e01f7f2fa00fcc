"""The in-memory dataset, its decode errors, and the SSD transforms."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torchvision import tv_tensors

from mlprune.data.dataset import DetectionDataset
from mlprune.data.transforms import AUGMENTATIONS, FastIoUCrop, build_eval_transform, build_train_transform
from mlprune.data.voc import Annotation, read_split
from mlprune.errors import DataError
from mlprune.synthetic.scenes import generate_voc_dataset

CLASSES = ["circle", "square", "triangle", "cross", "ring"]
SIZE = 96


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dataset") / "voc"
    generate_voc_dataset(root, CLASSES, n_trainval=8, n_test=0, image_size=SIZE, seed=5)
    return root


@pytest.fixture(scope="module")
def annotations(voc_root: Path) -> list[Annotation]:
    return read_split(voc_root, "trainval", CLASSES)


def test_items_are_float_images_and_plain_targets(annotations: list[Annotation]) -> None:
    dataset = DetectionDataset(annotations)
    assert len(dataset) == 8
    assert all(image.dtype == torch.uint8 for image in dataset.images)  # stored compactly
    image, target = dataset[3]
    assert image.shape == (3, SIZE, SIZE) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and float(image.max()) <= 1 and float(image.std()) > 0.05
    assert torch.equal(target["boxes"], annotations[3].boxes)
    assert torch.equal(target["labels"], annotations[3].labels)
    assert target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
    assert type(image) is torch.Tensor and type(target["boxes"]) is torch.Tensor


def _copy(voc_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(voc_root, tmp_path / "voc"))


def test_truncated_jpeg_raises_data_error(voc_root: Path, tmp_path: Path) -> None:
    root = _copy(voc_root, tmp_path)
    jpeg = root / "JPEGImages" / "000004.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:600])
    with pytest.raises(DataError) as info:
        DetectionDataset(read_split(root, "trainval", CLASSES))
    assert str(info.value).startswith(f"{jpeg}: cannot decode image")
    assert "truncated" in str(info.value).lower()


def test_non_image_file_raises_data_error(voc_root: Path, tmp_path: Path) -> None:
    root = _copy(voc_root, tmp_path)
    (root / "JPEGImages" / "000002.jpg").write_text("not a jpeg")
    with pytest.raises(DataError, match=r"000002\.jpg: cannot decode image"):
        DetectionDataset(read_split(root, "trainval", CLASSES))


def test_image_size_must_match_annotation(voc_root: Path, tmp_path: Path) -> None:
    root = _copy(voc_root, tmp_path)
    xml = root / "Annotations" / "000001.xml"
    xml.write_text(xml.read_text().replace(f"<height>{SIZE}</height>", "<height>200</height>"))
    with pytest.raises(DataError, match=rf"000001\.jpg: image is {SIZE}x{SIZE} but its annotation says {SIZE}x200"):
        DetectionDataset(read_split(root, "trainval", CLASSES))


def _check_sample(image: torch.Tensor, target: dict, original_labels: torch.Tensor) -> None:
    height, width = image.shape[-2:]
    boxes, labels = target["boxes"], target["labels"]
    assert image.dtype == torch.float32 and 0 <= float(image.min()) and float(image.max()) <= 1
    assert boxes.shape == (len(labels), 4) and labels.dtype == torch.int64
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    assert set(labels.tolist()) <= set(original_labels.tolist())


@pytest.mark.parametrize("ops", [[], ["flip"], ["iou_crop"], ["zoom_out"], ["photometric"], list(AUGMENTATIONS)])
def test_train_transforms_keep_boxes_inside_and_labels_in_sync(annotations: list[Annotation], ops: list[str]) -> None:
    dataset = DetectionDataset(annotations, build_train_transform(ops))
    torch.manual_seed(0)
    sizes = set()
    for _ in range(3):
        for i, annotation in enumerate(annotations):
            image, target = dataset[i]
            _check_sample(image, target, annotation.labels)
            sizes.add(tuple(image.shape[-2:]))
    assert (len(sizes) > 1) == any(op in ops for op in ("iou_crop", "zoom_out"))


def test_sanitize_drops_a_label_with_its_box() -> None:
    image = torch.zeros(3, 40, 50, dtype=torch.uint8)
    target = {"boxes": torch.tensor([[60.0, 5, 70, 10], [5, 5, 20, 30], [10, 45, 20, 48]]),
              "labels": torch.tensor([1, 2, 3])}
    out_image, out = build_train_transform([])(image, target)
    assert out["labels"].tolist() == [2]
    assert out["boxes"].tolist() == [[5, 5, 20, 30]]
    assert out_image.dtype == torch.float32


def test_flip_mirrors_boxes(annotations: list[Annotation]) -> None:
    annotation = annotations[0]
    dataset = DetectionDataset([annotation], build_train_transform(["flip"]))
    mirrored = annotation.boxes[:, [2, 1, 0, 3]] * torch.tensor([-1, 1, -1, 1]) + torch.tensor([SIZE, 0, SIZE, 0])
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        _, target = dataset[0]
        flipped = not torch.equal(target["boxes"], annotation.boxes)
        assert torch.equal(target["boxes"], mirrored if flipped else annotation.boxes)
        assert torch.equal(target["labels"], annotation.labels)
        seen.add(flipped)
    assert seen == {True, False}
    assert torch.equal(dataset.annotations[0].boxes, annotation.boxes)  # ground truth untouched


def test_op_order_does_not_matter_and_seed_reproduces(annotations: list[Annotation]) -> None:
    def run(ops: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(11)
        image, target = DetectionDataset(annotations[:1], build_train_transform(ops))[0]
        return image, target["boxes"]

    first, second = run(["flip", "iou_crop", "photometric"]), run(["photometric", "flip", "iou_crop"])
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_unknown_op_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown augmentation 'mosaic'; allowed: photometric, zoom_out"):
        build_train_transform(["flip", "mosaic"])


def test_iou_crop_keeps_images_without_boxes() -> None:
    image = torch.randint(0, 255, (3, 30, 40), dtype=torch.uint8)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    out_image, out = build_train_transform(["iou_crop"])(image, empty)
    assert out_image.shape == (3, 30, 40) and out["boxes"].shape == (0, 4)


def test_fast_iou_crop_params_hold_a_box_centre() -> None:
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10.0, 10, 30, 40], [60, 50, 90, 70]]),
                                     format="XYXY", canvas_size=(80, 100))
    crop = FastIoUCrop()
    torch.manual_seed(0)
    params = [crop.make_params([boxes]) for _ in range(50)]
    crops = [p for p in params if p]
    assert len(crops) > 20
    for p in crops:
        assert 0 <= p["left"] and p["left"] + p["width"] <= 100 and 0 <= p["top"] and p["top"] + p["height"] <= 80
        assert 0.5 <= p["width"] / p["height"] <= 2 and p["is_within_crop_area"].any()


def test_eval_transform_only_converts() -> None:
    image = torch.full((3, 4, 5), 255, dtype=torch.uint8)
    target = {"boxes": torch.tensor([[0.0, 0, 5, 4]]), "labels": torch.tensor([1])}
    out_image, out = build_eval_transform()(image, target)
    assert torch.equal(out_image, torch.ones(3, 4, 5)) and torch.equal(out["boxes"], target["boxes"])
