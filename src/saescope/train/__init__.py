"""Training SAEs: config, the fast TopK path, losses per architecture, the resumable trainer."""

from saescope.sae.training.sparse_topk import sparse_decode, topk_encode
from saescope.train.config import TrainConfig
from saescope.train.trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "sparse_decode", "topk_encode", "train"]
