#!/usr/bin/env python3
"""Write the hand-made seed inputs of the text and IDX fuzz targets into fuzz/seeds/.

Real snippets come from the shared data sets (MNIST, a9a, California housing) when present;
everything is kept to a few KB. The payload_decode and checkpoint seeds need the library's
encoders and are written by `cargo test --test fuzz_corpus -- --ignored write_seeds`.
Every seed starts with the mode bytes the harness reads first (see fuzz/src/lib.rs).
"""
import gzip
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("VQSGD_DATASETS", os.path.join(HERE, "..", "..", "shared", "datasets"))
if not os.path.isdir(DATA):
    DATA = "/work/shared/datasets"


def put(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(magic, dims, payload):
    return bytes(magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


def gz(b):
    return gzip.compress(b, mtime=0)


def mnist(n):
    """The first n MNIST training images and labels as IDX bytes (synthetic if absent)."""
    try:
        with gzip.open(os.path.join(DATA, "mnist", "train-images-idx3-ubyte.gz")) as f:
            raw = f.read(16 + n * 784)
        with gzip.open(os.path.join(DATA, "mnist", "train-labels-idx1-ubyte.gz")) as f:
            lab = f.read(8 + n)
        return idx([0, 0, 8, 3], [n, 28, 28], raw[16:]), idx([0, 0, 8, 1], [n], lab[8:])
    except OSError:
        px = [(i * 37) % 256 for i in range(n * 784)]
        return idx([0, 0, 8, 3], [n, 28, 28], px), idx([0, 0, 8, 1], [n], [i % 10 for i in range(n)])


def head(path, lines):
    try:
        with open(os.path.join(DATA, path)) as f:
            return "".join(f.readline() for _ in range(lines))
    except OSError:
        return None


# idx: byte 0 = mode (bit 0: image+label pair, bit 1: gzip images, bit 2: gzip labels,
# bit 3: also use as test set), bytes 1-2 = prepare config; pair mode: u16 LE image length.
img, lab = mnist(3)
small_img = idx([0, 0, 8, 3], [4, 2, 3], [(i * 37) % 256 for i in range(24)])
small_lab = idx([0, 0, 8, 1], [4], [0, 1, 2, 1])
pair = lambda m, i, l: bytes([m, 0, 0]) + struct.pack("<H", len(i)) + i + l
put("idx", "labels", bytes([0, 0, 0]) + small_lab)
put("idx", "images_gz", bytes([2, 0, 0]) + gz(small_img))
put("idx", "images_rank4", bytes([0, 0, 0]) + idx([0, 0, 8, 4], [2, 1, 2, 2], range(8)))
put("idx", "header_claims_more", bytes([0, 0, 0]) + idx([0, 0, 8, 3], [60000, 28, 28], [0] * 10))
put("idx", "absurd_dims_gz", bytes([2, 0, 0]) + gz(idx([0, 0, 8, 3], [2**32 - 1] * 3, [0] * 4)))
put("idx", "bad_magic", bytes([0, 0, 0]) + idx([1, 2, 8, 1], [4], [0, 1, 2, 0]))
put("idx", "trailing", bytes([0, 0, 0]) + small_lab + b"\0")
put("idx", "pair_small", pair(1, small_img, small_lab))
put("idx", "pair_small_gz_test", pair(15, small_img, small_lab))
put("idx", "pair_mnist3", pair(1, img, lab))
put("idx", "pair_count_mismatch", pair(1, small_img, idx([0, 0, 8, 1], [3], [0, 1, 2])))

# libsvm: byte 0 = mode (mod 4: 0/1 inferred dimension, 2: dimension = byte/4, 3: absurd;
# bit 4: also parse as test file), bytes 1-2 = prepare config.
a9a = head("a9a/a9a", 6) or "-1 3:1 11:1 14:1\n+1 5:1 7:1 14:1\n-1 2:1 6:1\n"
put("libsvm", "a9a_head", bytes([0x10, 0, 0x20]) + a9a.encode())
put("libsvm", "a9a_dim59_beyond", bytes([2 + 4 * 123 % 256, 0, 0]) + a9a.encode())
put("libsvm", "sparse_qid_comment", bytes([0, 0, 0]) + b"+1 1:0.5 3:2\n\n-1 2:1 # c\n1 qid:3 3:-1 1:4\n")
put("libsvm", "index_beyond_dim", bytes([2 + 4 * 4, 0, 0]) + b"1 1:1\n1 9:1\n")
put("libsvm", "bad_value", bytes([0, 0, 0]) + b"1 1:1\n1 3:abc\n")
put("libsvm", "index_zero", bytes([0, 0, 0]) + b"1 0:1\n")
put("libsvm", "huge_label", bytes([0, 1, 0]) + b"1e300 1:1\n2 2:1\n3 1:2\n")
put("libsvm", "regression", bytes([0, 1, 0x30]) + b"0.5 1:1 2:3\n1.5 2:1\n-2 1:0.25\n")

# csv: byte 0 = mode (mod 3: header lines, /3 mod 8: label column, bit 7: expected columns).
cal = head("california-housing/cal_housing.data", 5) or "1,2,3\n4,5,6\n7,8,9\n"
put("csv", "california_head", bytes([0, 1, 0x30]) + cal.encode())
put("csv", "header_whitespace", bytes([1, 0, 0]) + b"a b c\n1 2 3\n4  5\t6\n7 8 9\n")
put("csv", "label_first", bytes([3, 0, 0]) + b"0,1,2\n1,2,3\n0,5,6\n1,1,1\n")
put("csv", "wrong_columns", bytes([0, 0, 0]) + b"1,2,3\n1,2\n")
put("csv", "non_numeric", bytes([0, 0, 0]) + b"1,2,3\n1,x,3\n")
put("csv", "huge_value", bytes([0, 1, 0x30]) + b"1e300,2,3\n4,5,6\n7,8,9\n")
put("csv", "empty_field", bytes([0, 0, 0]) + b"1,,3\n4,5,6\n")

# config: TOML text; lines starting with "--set " are command-line overrides.
for name in ["default.toml", "a9a_logistic.toml", "synthetic_linear.toml"]:
    with open(os.path.join(HERE, "..", "configs", name)) as f:
        put("config", name.replace(".toml", ""), f.read())
put("config", "overrides", "[optim]\nlr = 0.1\n--set model.hidden=[32,16]\n"
    "--set compression.scheme=sparse\n--set compression.k=4\n--set compression.block=layer\n")
put("config", "synthetic_small", "[data]\nsource = \"synthetic_classification\"\nn_samples = 40\n"
    "synthetic_features = 3\nn_classes = 3\n[model]\nkind = \"softmax\"\n")
put("config", "unknown_key", "[optim]\nlrr = 0.1\n")
put("config", "wrong_type", "[optim]\nlr = \"fast\"\n")
put("config", "absurd_sizes", "[model]\nhidden = [1000000000]\n--set compression.repetitions=1e12\n"
    "--set optim.batch_size=0\n--set data.n_samples=1e15\n")
put("config", "privacy", "[compression]\nscheme = \"cross_polytope\"\nepsilon = 2.0\nclip = 1.0\n"
    "repetitions = 4\ncoding = \"rice\"\n")
put("config", "overlap", "[compression]\nscheme = \"cross_polytope\"\noverlap = true\n"
    "block = \"layer\"\n[model]\nhidden = [16, 8]\n")
print("seeds written under", os.path.join(HERE, "seeds"), file=sys.stderr)
