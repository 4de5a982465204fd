"""Ordo: turn a large pile of unlabeled images into organised, searchable meaning."""

import os

__version__ = "0.1.0"

# Idle OpenMP threads (PyTorch's intra-op pool: CLIP and the text towers) sleep instead of spinning. An Ordo
# process shares its cores between the model and its decoder, upload and writer threads, and GNU OpenMP's
# default spin-wait after every parallel region burned those threads' cores: CLIP's model used 74 ms of CPU
# per image inside `ordo up` against 57 alone (2-core EPYC, issue 18), 55 with passive waiting, while the
# model alone is as fast either way (within this VM's noise). ONNX Runtime's pool is set the same way
# (``tower_runtime``: allow_spinning=0). Set here, at the package's import, because libgomp reads it once when
# torch is first imported; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
