"""Writes two tiny `torch.save`-format files for `torch_pickle.rs`'s tests, without torch.

torch.save writes a zip (entries stored, not deflated) of `archive/data.pkl`, where each tensor
is pickled as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
hooks)` and each storage as a persistent id `('storage', torch.FloatStorage, key, 'cpu',
numel)`, and `archive/data/<key>` with the storage's raw little-endian bytes. Stand-in modules
named `torch` and `torch._utils` make Python's pickle write the same opcodes.

    python3 scripts/make_torch_layouts.py crates/reft-core/tests/fixtures/torch

layouts.pt: `c` 2×3 row-major (storage 0, values 0..5); `f` 2×3 column-major (stride (1, 2),
storage 0: f[i][j] = 2j + i); `o` 3 values from element 4 of storage 1 (values 10..19).
strided.pt: `s` 3 values at stride 2 of storage 0, a layout the reader refuses.
"""
import collections, io, pickle, struct, sys, types, zipfile

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
class FloatStorage:
    pass
FloatStorage.__module__ = "torch"
torch.FloatStorage = FloatStorage
def _rebuild_tensor_v2(*args):
    raise NotImplementedError
_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
torch._utils = utils
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils

class Storage:
    def __init__(self, key, values):
        self.key, self.values = key, values

class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())
    def __reduce__(self):
        return (_rebuild_tensor_v2, self.args)

class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", FloatStorage, obj.key, "cpu", len(obj.values))
        return None

def write(path, tensors, storages):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(collections.OrderedDict(tensors))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for s in storages:
            z.writestr(f"archive/data/{s.key}", struct.pack(f"<{len(s.values)}f", *s.values))
        z.writestr("archive/version", "3\n")

out = sys.argv[1]
s0, s1 = Storage("0", [float(v) for v in range(6)]), Storage("1", [float(v) for v in range(10, 20)])
write(f"{out}/layouts.pt", [("c", FakeTensor(s0, 0, (2, 3), (3, 1))), ("f", FakeTensor(s0, 0, (2, 3), (1, 2))), ("o", FakeTensor(s1, 4, (3,), (1,)))], [s0, s1])
write(f"{out}/strided.pt", [("s", FakeTensor(s0, 0, (3,), (2,)))], [s0])
