"""Auto-interp's config, declared once on the typed schema: how features are explained and
scored (`AutoInterpConfig`) and which LLM does it (`BackendConfig`, built by `make_backend`).

YAML files, dotted `field=value` overrides (`backend.model=...`), the flags of
`saescope explain` / `saescope score` and docs/config.md all come from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

from saescope.autointerp.backend import LLMBackend
from saescope.autointerp.prompts import EXPLAIN_FORMATS
from saescope.autointerp.scorers import SCORERS
from saescope.config import Config, section, setting
from saescope.errors import ConfigError

BACKEND_KINDS = ("transformers", "openai")
DEFAULT_LOCAL_MODEL = "smollm2"  # the bundled SmolLM2-135M-Instruct


@dataclass
class BackendConfig(Config):
    """The LLM that explains and scores: in-process transformers, or an OpenAI-compatible server."""

    kind: str = setting(
        "transformers",
        "transformers: a Hugging Face chat model in this process (offline); openai: any "
        "OpenAI-compatible server (OpenAI, OpenRouter, vllm, llama.cpp, Ollama, transformers serve)",
        choices=BACKEND_KINDS,
        flag="--backend",
    )
    base_url: str | None = setting(
        None,
        "the server's OpenAI-compatible URL, e.g. http://127.0.0.1:8000/v1 (kind openai)",
    )
    model: str | None = setting(
        None,
        "model name the server serves (kind openai; required), or a HF chat model id / folder "
        f"(kind transformers; default {DEFAULT_LOCAL_MODEL!r}, the bundled SmolLM2-135M-Instruct)",
    )
    api_key_env: str | None = setting(
        None,
        "NAME of the environment variable holding the API key (the key itself is never "
        "stored or printed); leave out for servers without keys",
    )
    max_concurrency: int = setting(8, "requests kept in flight at once (kind openai)", low=1)
    timeout_s: float = setting(
        120.0, "seconds before a request is given up and retried (kind openai)", low=0.001,
        flag="--timeout",
    )  # fmt: skip
    max_retries: int = setting(
        5, "retries of a request on 429 / 5xx / timeouts, with backoff (kind openai)", low=0
    )
    threads: int | None = setting(
        None,
        "torch CPU threads for the in-process model (kind transformers; default: torch's); "
        "on a busy machine 1 is often fastest",
        low=1,
    )
    batch_size: int = setting(
        8,
        "requests generated together as one batch (kind transformers)",
        low=1,
        flag="--generation-batch-size",
    )
    device: str = setting("cpu", "torch device of the in-process model (kind transformers)")
    dtype: str | None = setting(
        None, "torch dtype of the in-process model, e.g. bfloat16 (kind transformers)"
    )

    def validate(self) -> None:
        super().validate()
        if self.kind == "openai":
            if not self.base_url:
                raise ConfigError(
                    "backend.base_url",
                    self.base_url,
                    "the URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) "
                    "when backend.kind is openai",
                )
            if not self.model:
                raise ConfigError(
                    "backend.model",
                    self.model,
                    "the name of a model the server serves when backend.kind is openai",
                )


@dataclass
class AutoInterpConfig(Config):
    """How features are explained and scored (the LLM itself: the backend section)."""

    prompt_format: str = setting(
        "delphi",
        "explainer prompt: delphi (marked <<tokens>>), oai (token<TAB>activation pairs) or "
        "label (a 1-6 word label)",
        choices=EXPLAIN_FORMATS,
        flag="--format",
    )
    scorers: tuple[str, ...] = setting(
        ("detection", "fuzzing"),
        "scorers run on each explanation (comma-separated)",
        choices=SCORERS,
    )
    labels: bool = setting(
        False, "also ask for a short 1-6 word label of each feature (for the map and browser)"
    )
    n_explain: int = setting(10, "top examples shown to the explainer", low=1)
    n_activating: int = setting(
        10, "activating examples each scorer sees (top + quantile, none shown to the explainer)",
        low=1,
    )  # fmt: skip
    n_inactive: int = setting(
        10, "random contexts where the feature is inactive, per scorer", low=0
    )
    n_hard_negatives: int = setting(
        5, "hard negatives (top examples of the nearest features by decoder cosine)", low=0
    )
    n_neighbours: int = setting(
        3, "nearest features by decoder cosine that give hard negatives", low=0
    )
    batch_size: int = setting(5, "examples per detection / fuzzing prompt", low=1)
    threshold: float = setting(
        0.3,
        "mark tokens above this fraction of the example's max activation",
        low=0.0,
        high=0.99,
    )
    show_activations: bool = setting(
        False, "delphi format: list each marked token with its 0-10 activation too"
    )
    use_top_logits: bool = setting(
        False, "show the explainer the feature's top positive logits (promoted tokens) too"
    )
    explain_max_tokens: int = setting(200, "most tokens an explanation answer may take", low=1)
    n_retries: int = setting(
        2, "retries of a malformed or empty answer (sampled, not greedy)", low=0
    )
    seed: int = setting(0, "seed of the example sampling and shuffles", low=0)
    cache_dir: str | None = setting(
        None,
        "folder of the on-disk request cache (default for the CLI: autointerp_cache/ next to "
        "the store); a rerun resumes through it",
    )
    max_requests: int | None = setting(
        None,
        "budget: most requests this run may send to the LLM (cached answers are free)",
        low=0,
        count=True,
    )
    backend: BackendConfig = section(BackendConfig, "the LLM that explains and scores")

    def __post_init__(self) -> None:
        if isinstance(self.scorers, str):  # "detection,fuzzing" from YAML or an override
            self.scorers = tuple(s.strip() for s in self.scorers.split(",") if s.strip())
        elif isinstance(self.scorers, list):
            self.scorers = tuple(self.scorers)
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        self.backend.validate()


def make_backend(cfg: BackendConfig) -> LLMBackend:
    """The backend the section describes (an OpenAI client, or the in-process model, unloaded)."""
    cfg.validate()
    if cfg.kind == "openai":
        from saescope.autointerp.openai_backend import OpenAIBackend

        assert cfg.base_url is not None and cfg.model is not None  # validate() saw to it
        return OpenAIBackend(
            cfg.base_url,
            cfg.model,
            api_key_env=cfg.api_key_env,
            max_concurrency=cfg.max_concurrency,
            timeout_s=cfg.timeout_s,
            max_retries=cfg.max_retries,
        )
    from saescope.autointerp.transformers_backend import TransformersBackend

    return TransformersBackend(
        cfg.model or DEFAULT_LOCAL_MODEL,
        device=cfg.device,
        batch_size=cfg.batch_size,
        dtype=cfg.dtype,
        threads=cfg.threads,
    )
