"""A small GGUF reader for the forward-pass reference (tools/reference/llama_reference.py).

Written from the GGUF specification (ggml's docs/gguf.md), independently of the C++ reader in
src/engine/gguf_file.cc, so that the two can check each other. Reads GGUF versions 2 and 3:

  header:  magic "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count
  kv:      string key, u32 value type, value
  tensor:  string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset
  data:    starts at the first multiple of general.alignment (default 32) after the infos;
           each tensor lies at data start + offset.

Strings are u64 length + UTF-8 bytes; everything is little-endian.

Shape convention: ne[0] is the contiguous (innermost) dimension. A tensor with
ne = [n0, n1] is returned as a numpy array of shape (n1, n0), i.e. in row-major order with the
GGUF dimensions reversed. A weight matrix with ne = [in, out] therefore comes back as
[out, in], exactly the layout of a PyTorch nn.Linear weight (y = x @ W.T).

Dequantization (ggml's block layouts):
  F32 (0), F16 (1), BF16 (30): plain little-endian values.
  Q8_0 (8): blocks of 32 values in 34 bytes: fp16 scale d, then 32 int8 q; value = d * q.
  Q4_0 (2): blocks of 32 values in 18 bytes: fp16 scale d, then 16 bytes; byte j holds element
            j in its low nibble and element j + 16 in its high nibble; value = d * (nibble - 8).
"""

import struct

import numpy as np

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_BF16 = 0, 1, 2, 8, 30
TYPE_NAMES = {GGML_F32: "f32", GGML_F16: "f16", GGML_Q4_0: "q4_0", GGML_Q8_0: "q8_0", GGML_BF16: "bf16"}
# (values per block, bytes per block)
BLOCKS = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_BF16: (1, 2), GGML_Q8_0: (32, 34), GGML_Q4_0: (32, 18)}

# Metadata value types: id -> struct format for the scalar ones.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GgufError(Exception):
    pass


class _Cursor:
    def __init__(self, data, path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n):
        if self.pos + n > len(self.data):
            raise GgufError(f"{self.path}: truncated at byte {self.pos} (wanted {n} more)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        return self.take(self.unpack("<Q")).decode("utf-8")

    def value(self, value_type):
        if value_type in _SCALARS:
            return self.unpack(_SCALARS[value_type])
        if value_type == _STRING:
            return self.string()
        if value_type == _ARRAY:
            element_type, count = self.unpack("<I"), self.unpack("<Q")
            return [self.value(element_type) for _ in range(count)]
        raise GgufError(f"{self.path}: unknown metadata value type {value_type} at byte {self.pos}")


class GgufFile:
    """metadata: dict key -> value; tensors: dict name -> (ggml type, ne list, absolute offset)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        cur = _Cursor(self.data, path)
        if cur.take(4) != b"GGUF":
            raise GgufError(f"{path}: not a GGUF file (bad magic)")
        self.version = cur.unpack("<I")
        if self.version not in (2, 3):
            raise GgufError(f"{path}: GGUF version {self.version} (this reader knows 2 and 3)")
        tensor_count, kv_count = cur.unpack("<Q"), cur.unpack("<Q")
        self.metadata = {}
        for _ in range(kv_count):
            key = cur.string()
            self.metadata[key] = cur.value(cur.unpack("<I"))
        infos = []
        for _ in range(tensor_count):
            name = cur.string()
            ne = [cur.unpack("<Q") for _ in range(cur.unpack("<I"))]
            infos.append((name, cur.unpack("<I"), ne, cur.unpack("<Q")))
        alignment = self.metadata.get("general.alignment", 32)
        data_start = (cur.pos + alignment - 1) // alignment * alignment
        self.tensors = {name: (ggml_type, ne, data_start + offset) for name, ggml_type, ne, offset in infos}

    def has(self, name):
        return name in self.tensors

    def tensor(self, name):
        """The tensor `name`, dequantized to float64, in row-major shape reversed(ne)."""
        if name not in self.tensors:
            raise GgufError(f"no tensor '{name}'")
        ggml_type, ne, offset = self.tensors[name]
        if ggml_type not in BLOCKS:
            raise GgufError(f"tensor '{name}': type {ggml_type} is not supported by this reference")
        count = int(np.prod(ne))
        per_block, block_bytes = BLOCKS[ggml_type]
        if ne[0] % per_block:
            raise GgufError(f"tensor '{name}': row of {ne[0]} is not a whole number of blocks")
        nbytes = count // per_block * block_bytes
        raw = np.frombuffer(self.data, dtype=np.uint8, count=nbytes, offset=offset)
        values = dequantize(ggml_type, raw, count)
        return values.reshape(list(reversed(ne)))

    def type_of(self, name):
        return self.tensors[name][0]


def dequantize(ggml_type, raw, count):
    """float64 values of `count` elements stored as `raw` bytes of type `ggml_type`."""
    if ggml_type == GGML_F32:
        return raw.view("<f4").astype(np.float64)
    if ggml_type == GGML_F16:
        return raw.view("<f2").astype(np.float64)
    if ggml_type == GGML_BF16:
        return (raw.view("<u2").astype(np.uint32) << 16).view("<f4").astype(np.float64)
    if ggml_type == GGML_Q8_0:
        blocks = raw.reshape(-1, 34)
        scale = blocks[:, :2].copy().view("<f2").astype(np.float64)  # (n, 1)
        quants = blocks[:, 2:].copy().view(np.int8).astype(np.float64)
        return (scale * quants).reshape(count)
    if ggml_type == GGML_Q4_0:
        blocks = raw.reshape(-1, 18)
        scale = blocks[:, :2].copy().view("<f2").astype(np.float64)
        packed = blocks[:, 2:]
        low = (packed & 0x0F).astype(np.float64) - 8.0   # elements 0..15
        high = (packed >> 4).astype(np.float64) - 8.0    # elements 16..31
        return (scale * np.concatenate([low, high], axis=1)).reshape(count)
    raise GgufError(f"type {ggml_type} is not supported by this reference")
