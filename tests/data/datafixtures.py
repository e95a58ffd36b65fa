"""Writers for tiny dataset fixtures in the exact on-disk formats (see shared spec datasets.md)."""

from __future__ import annotations

import os
import pickle
import struct

import flatbuffers
import numpy as np
from PIL import Image

AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
CIFAR10DVS_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


# ----------------------------------------------------------------------------- AEDAT 4.0


def _description_xml(width: int, height: int) -> str:
    # DV's description: <dv> -> node outInfo -> node "0" (typeIdentifier EVTS, info sizeX/sizeY)
    return (
        '<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
        '<node name="0" path="/mainloop/Recorder/outInfo/0/">'
        '<attr key="compression" type="string">NONE</attr>'
        '<attr key="originalModuleName" type="string">capture</attr>'
        '<attr key="originalOutputName" type="string">events</attr>'
        '<attr key="typeDescription" type="string">Array of events (polarity ON/OFF).</attr>'
        '<attr key="typeIdentifier" type="string">EVTS</attr>'
        '<node name="info" path="/mainloop/Recorder/outInfo/0/info/">'
        f'<attr key="sizeX" type="int">{width}</attr>'
        f'<attr key="sizeY" type="int">{height}</attr>'
        '<attr key="source" type="string">DVS128</attr>'
        "</node></node></node></dv>"
    )


def _ioheader(width: int, height: int) -> bytes:
    """Size-prefixed IOHE flatbuffer: table Ioheader {compression: int32 = 0 (None);
    file_data_position: int64 = -1; description: string}."""
    b = flatbuffers.Builder(1024)
    desc = b.CreateString(_description_xml(width, height))
    b.StartObject(3)
    b.PrependInt32Slot(0, 0, 0)
    b.PrependInt64Slot(1, -1, -1)
    b.PrependUOffsetTRelativeSlot(2, desc, 0)
    b.FinishSizePrefixed(b.EndObject(), file_identifier=b"IOHE")
    return bytes(b.Output())


def _event_packet(t, x, y, on) -> bytes:
    """Size-prefixed EVTS flatbuffer: table EventPacket {elements: [Event]} with
    struct Event {int64 t; int16 x; int16 y; bool on} (16 bytes, 8-byte aligned)."""
    n = len(t)
    b = flatbuffers.Builder(64 + 16 * n)
    b.StartVector(16, n, 8)
    for i in reversed(range(n)):  # flatbuffers builds back to front
        b.Prep(8, 16)
        b.Pad(3)
        b.PrependBool(bool(on[i]))
        b.PrependInt16(int(y[i]))
        b.PrependInt16(int(x[i]))
        b.PrependInt64(int(t[i]))
    vec = b.EndVector()
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, vec, 0)
    b.FinishSizePrefixed(b.EndObject(), file_identifier=b"EVTS")
    return bytes(b.Output())


def write_aedat4(path, t, x, y, on, width: int = 128, height: int = 128, packet_size: int = 64) -> None:
    """Write events as an uncompressed AEDAT 4.0 file (DV layout, one event stream, id 0)."""
    t, x, y, on = (np.asarray(a) for a in (t, x, y, on))
    with open(path, "wb") as f:
        f.write(AEDAT4_MAGIC)
        f.write(_ioheader(width, height))  # uint32 size prefix + IOHE flatbuffer
        for a in range(0, len(t), packet_size):
            sl = slice(a, a + packet_size)
            payload = _event_packet(t[sl], x[sl], y[sl], on[sl])
            f.write(struct.pack("<iI", 0, len(payload)))  # int32 stream id, uint32 length
            f.write(payload)


def random_events(
    rng: np.random.Generator,
    n: int,
    width: int = 128,
    height: int = 128,
    t0: int = 0,
    duration_us: int = 100_000,
):
    """Sorted random events: (t int64 us, x, y, on bool)."""
    t = np.sort(rng.integers(t0, t0 + duration_us, n)).astype(np.int64)
    return t, rng.integers(0, width, n), rng.integers(0, height, n), rng.random(n) < 0.5


def write_cifar10dvs(root, per_class: int = 3, seed: int = 0, n_events: int = 200) -> str:
    """``<root>/CIFAR10DVS/<class>/cifar10_<class>_<i>.aedat4`` for the 10 classes.

    Label-coded: every event of class k has ``x`` in ``[12k, 12k + 4)``."""
    rng = np.random.default_rng(seed)
    base = os.path.join(root, "CIFAR10DVS")
    for k, c in enumerate(CIFAR10DVS_CLASSES):
        os.makedirs(os.path.join(base, c), exist_ok=True)
        for i in range(per_class):
            t, x, y, on = random_events(rng, n_events, t0=1_000_000 * (i + 1))
            x = 12 * k + rng.integers(0, 4, n_events)
            write_aedat4(os.path.join(base, c, f"cifar10_{c}_{i}.aedat4"), t, x, y, on)
    return base


# ----------------------------------------------------------------------------- DVS128 Gesture


def write_dvsgesture(
    root, users_train=(1, 2), users_test=(24,), labels=range(11), seed: int = 0, n_events: int = 300
) -> str:
    """tonic's preprocessed layout: ``<root>/DVSGesture/ibmGesture{Train,Test}/user{NN}_{light}/{label}.npy``,
    each an unstructured [N, 4] array (x, y, p, t in ms). Label-coded: x in [10*label, 10*label + 4)."""
    rng = np.random.default_rng(seed)
    base = os.path.join(root, "DVSGesture")
    for folder, users in (("ibmGestureTrain", users_train), ("ibmGestureTest", users_test)):
        for u in users:
            d = os.path.join(base, folder, f"user{u:02d}_fluorescent")
            os.makedirs(d, exist_ok=True)
            for lab in labels:
                t = np.sort(rng.integers(0, 6000, n_events))  # ms
                ev = np.stack(
                    [
                        10 * lab + rng.integers(0, 4, n_events),
                        rng.integers(0, 128, n_events),
                        rng.integers(0, 2, n_events),
                        t,
                    ],
                    axis=1,
                ).astype(np.float64)
                np.save(os.path.join(d, f"{lab}.npy"), ev)
    return base


# ----------------------------------------------------------------------------- CIFAR pickles


def _cifar_images(rng, n):
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def write_cifar10(root, n_train_per_batch: int = 20, n_test: int = 20, seed: int = 0) -> str:
    """torchvision's ``cifar-10-batches-py`` with five train batches, test batch and meta."""
    rng = np.random.default_rng(seed)
    d = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(d, exist_ok=True)
    for name, n in [(f"data_batch_{i}", n_train_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        labels = [int(v) for v in np.arange(n) % 10]
        obj = {
            "batch_label": f"{name} of fixture",
            "labels": labels,
            "data": _cifar_images(rng, n),
            "filenames": [f"img_{i}.png" for i in range(n)],
        }
        with open(os.path.join(d, name), "wb") as f:
            pickle.dump(obj, f, protocol=2)
    with open(os.path.join(d, "batches.meta"), "wb") as f:
        pickle.dump(
            {
                "label_names": list(CIFAR10DVS_CLASSES),
                "num_cases_per_batch": n_train_per_batch,
                "num_vis": 3072,
            },
            f,
            protocol=2,
        )
    return d


def write_cifar100(root, n_train: int = 200, n_test: int = 100, seed: int = 0) -> str:
    """``cifar-100-python/{train,test,meta}`` with fine and coarse labels."""
    rng = np.random.default_rng(seed)
    d = os.path.join(root, "cifar-100-python")
    os.makedirs(d, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = [int(v) for v in np.arange(n) % 100]
        obj = {
            "filenames": [f"f{i}.png" for i in range(n)],
            "batch_label": name,
            "fine_labels": fine,
            "coarse_labels": [v // 5 for v in fine],
            "data": _cifar_images(rng, n),
        }
        with open(os.path.join(d, name), "wb") as f:
            pickle.dump(obj, f, protocol=2)
    with open(os.path.join(d, "meta"), "wb") as f:
        pickle.dump(
            {
                "fine_label_names": [f"c{i}" for i in range(100)],
                "coarse_label_names": [f"s{i}" for i in range(20)],
            },
            f,
            protocol=2,
        )
    return d


# ----------------------------------------------------------------------------- image folders


def _jpeg(path, rng, size=(64, 64)):
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, "JPEG")


def write_tiny_imagenet(
    root, n_classes: int = 200, train_per_class: int = 2, val_total: int = 20, seed: int = 0
) -> str:
    """``tiny-imagenet-200`` standard layout with small 64x64 JPEGs."""
    rng = np.random.default_rng(seed)
    d = os.path.join(root, "tiny-imagenet-200")
    wnids = [f"n{1000000 + 7 * i:08d}" for i in range(n_classes)]
    os.makedirs(os.path.join(d, "val", "images"), exist_ok=True)
    os.makedirs(os.path.join(d, "test", "images"), exist_ok=True)
    with open(os.path.join(d, "wnids.txt"), "w") as f:
        f.write("\n".join(reversed(wnids)) + "\n")  # file order != sorted order on purpose
    for w in wnids:
        img_dir = os.path.join(d, "train", w, "images")
        os.makedirs(img_dir, exist_ok=True)
        with open(os.path.join(d, "train", w, f"{w}_boxes.txt"), "w") as f:
            for i in range(train_per_class):
                _jpeg(os.path.join(img_dir, f"{w}_{i}.JPEG"), rng)
                f.write(f"{w}_{i}.JPEG\t0\t0\t63\t63\n")
    with open(os.path.join(d, "val", "val_annotations.txt"), "w") as f:
        for i in range(val_total):
            w = wnids[(i * 37) % n_classes]
            _jpeg(os.path.join(d, "val", "images", f"val_{i}.JPEG"), rng)
            f.write(f"val_{i}.JPEG\t{w}\t1\t2\t60\t61\n")
    _jpeg(os.path.join(d, "test", "images", "test_0.JPEG"), rng)
    return d


def write_imagenet(
    base, n_classes: int = 3, train_per_class: int = 3, val_per_class: int = 2, seed: int = 0
) -> str:
    """``<base>/{train,val}/<wnid>/*.JPEG`` with small JPEGs of varied sizes."""
    rng = np.random.default_rng(seed)
    wnids = [f"n0144{i:04d}" for i in range(n_classes)]
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for w in wnids:
            d = os.path.join(base, split, w)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                _jpeg(os.path.join(d, f"{w}_{i}.JPEG"), rng, size=(40 + 7 * i, 30 + 5 * i))
    return base


# ----------------------------------------------------------------------------- MNIST IDX files

MNIST_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """LeCun's IDX format for uint8 data: magic 0x00 0x00 0x08 <ndim>, big-endian uint32 dims, bytes."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    return struct.pack(">I", 0x0800 | a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_idx(path, array: np.ndarray, gz: bool = True) -> str:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``gz`` (then ``path`` gets ``.gz``)."""
    import gzip

    blob = idx_bytes(array)
    path = str(path) + (".gz" if gz else "")
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
        f.write(blob)
    return path


def mnist_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images ``[n, 28, 28]`` and labels ``i % 10`` (every class present)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_mnist(folder, n_train: int = 100, n_test: int = 20, seed: int = 0, gz: bool = True) -> str:
    """The four MNIST-format IDX files in ``folder`` (e.g. ``<root>/MNIST/raw``), gzipped or plain."""
    os.makedirs(folder, exist_ok=True)
    x_tr, y_tr = mnist_arrays(n_train, seed)
    x_te, y_te = mnist_arrays(n_test, seed + 1)
    for name, arr in zip(MNIST_IDX_FILES, (x_tr, y_tr, x_te, y_te)):
        write_idx(os.path.join(folder, name), arr, gz=gz)
    return str(folder)
