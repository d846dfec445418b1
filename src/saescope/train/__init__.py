"""Training SAEs: config, the fast TopK path, losses per architecture, the resumable trainer."""

from saescope.train.config import TrainConfig
from saescope.train.sparse_topk import sparse_decode, topk_encode
from saescope.train.trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "sparse_decode", "topk_encode", "train"]
