"""SAE architectures as plug-ins: one module per architecture, registered once.

Each module holds everything saescope needs to know about its architecture: the inference SAE (an
`SAE` subclass), its training hyperparameters (a `Hyperparameters` dataclass: its own section of
TrainConfig, `architecture:`, declared with setting()), its training loss and initialisation, and
the switches the trainer, the distributed trainer and analysis read (an `Architecture` subclass
decorated with `@register`). The rest of saescope asks the registry (`get_architecture(name)`) and
never names an architecture.

Adding an architecture (one new module, plus its test):

1. Write `my_arch.py` in this folder: a subclass of `SAE` with `architecture = "my_arch"` and
   `activation(hidden_pre)`; tensors of its own go in `__init__` and `expected_shapes()`.
2. If it trains with knobs, a `@dataclass` subclass of `Hyperparameters` declaring them with
   `setting(default, help, low=..., high=..., choices=...)`: they become `architecture.NAME` in
   YAML and overrides, checked with messages naming the field, and rows of `saescope
   config-docs train`. `grid_fields` lists the ones that may hold a list (one SAE per value).
3. Its loss: `loss(sae, x, s) -> StepOutput` on normalised activations x [batch, d_in], built from
   the helpers in saescope.sae.training.losses (squared_error, fire_counts, auxk_loss, ...).
4. `@register class MyArch(Architecture)` with `sae_class`, `hyperparameters` and `loss`, plus any
   of `check_sae_config`, `sae_config_fields`, `init_tensors`, `dense_start`, `resamples_dead`.
5. That is all: every module in this folder is imported when the package is (see the end of this
   file), so `architecture: my_arch` trains, saves, loads and analyses like the built-ins. A
   module kept elsewhere (your own package, a test) registers when you import it.

tests/train/test_plugin_architecture.py does exactly this in one module inside the test.
"""

import importlib
import pkgutil

from saescope.sae.architectures.plugin import (
    Architecture,
    Hyperparameters,
    architecture_names,
    get_architecture,
    register,
    unregister,
)
from saescope.sae.architectures.shared import (
    batch_topk,
    jumprelu,
    rectangle,
    scatter_dense,
    step,
    topk_sparse,
)

# the built-in architectures, registered in this order (the order `ARCHITECTURES` lists them)
from saescope.sae.architectures.standard import StandardSAE  # isort: skip
from saescope.sae.architectures.topk import TopKSAE  # isort: skip
from saescope.sae.architectures.batchtopk import BatchTopKSAE  # isort: skip
from saescope.sae.architectures.jumprelu import JumpReLUSAE  # isort: skip
from saescope.sae.architectures.gated import GatedSAE  # isort: skip
from saescope.sae.architectures.matryoshka_batchtopk import MatryoshkaBatchTopKSAE  # isort: skip

# importing the submodule `jumprelu` bound that name to the module: the
# function is what callers import
from saescope.sae.architectures.shared import jumprelu  # isort: skip  # noqa: F811


def _import_other_modules() -> None:
    """Import (so register) every other module in this folder: a new one needs no edit here."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_import_other_modules()

__all__ = [
    "Architecture",
    "BatchTopKSAE",
    "GatedSAE",
    "Hyperparameters",
    "JumpReLUSAE",
    "MatryoshkaBatchTopKSAE",
    "StandardSAE",
    "TopKSAE",
    "architecture_names",
    "batch_topk",
    "get_architecture",
    "jumprelu",
    "rectangle",
    "register",
    "scatter_dense",
    "step",
    "topk_sparse",
    "unregister",
]
