"""One tool's side of bench/train.py, run inside that tool's virtual environment.

    python bench/train_runner.py --tool {saescope,saelens,sparsify} --arch {topk,standard} --acts FILE --out FILE

Loads the shared activations (torch.save'd {"train": [n, d], "eval": [m, d]}, already
normalised), then:
  timing   alternates blocks of `--timing-steps` training steps with the same number of bare
           encoder matmuls (x @ W_enc) on the same fixed batches, so noise hits both alike;
  quality  trains a fresh SAE once over the training tokens in order, then measures FVU and
           L0 on the held-out tokens.
Each tool trains with its own code: SAELens's training_forward_pass and its trainer's step
(clip, Adam), sparsify's SparseCoder forward with its trainer's step, saescope's Trainer.
Only torch is assumed, so the script runs in any of the three environments.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable

import torch

Step = Callable[[torch.Tensor], None]
Encode = Callable[[torch.Tensor], torch.Tensor]  # x [n, d] -> reconstruction [n, d]; also sets L0


class Tool:
    """A tool's SAE set up for training: step(x) trains on one batch, reconstruct(x) -> (recon, l0)."""

    W_enc: torch.Tensor  # [d_in, d_sae] view of the encoder, for the matmul limit

    def step(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


# ---- saescope ----------------------------------------------------------------------------------


class TensorStore:
    """The minimal activation store the saescope Trainer needs, over fixed in-memory batches."""

    def __init__(self, acts: torch.Tensor, batch_size: int, hook: str) -> None:
        self.acts, self.batch_size, self.hook = acts, batch_size, hook
        self.position = 0
        self.widths = {hook: acts.shape[1]}
        self.scaling_factors: dict[str, float] = {}
        self.context_length = None

    def __iter__(self):
        while (self.position + 1) * self.batch_size <= self.acts.shape[0]:
            start = self.position * self.batch_size
            self.position += 1
            yield {self.hook: self.acts[start : start + self.batch_size]}

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = state["position"]


class Saescope(Tool):
    def __init__(self, args: argparse.Namespace, train_acts: torch.Tensor) -> None:
        from saescope.train import TrainConfig, Trainer

        hook = "blocks.6.hook_resid_post"
        self.run_dir = tempfile.mkdtemp(prefix="bench-saescope-")
        standard = args.arch == "standard"
        cfg = TrainConfig(
            run_dir=self.run_dir,
            model={"hooks": hook},
            # the settings the architecture has of these (k or l1_coefficient) are kept
            architecture={"name": args.arch, "k": args.k, "l1_coefficient": args.l1},
            optim={
                "batch_size": args.batch,
                "training_tokens": train_acts.shape[0] // args.batch * args.batch,
                "lr": args.lr,
                # SAELens's trainer: gradients clipped to norm 1
                "max_grad_norm": 1.0 if standard else 0.0,
            },
            schedule={
                "lr_warmup_fraction": 0.0,
                "lr_decay_fraction": 0.0,
                "l1_warmup_fraction": 0.0,
            },
            sae={
                # SAELens's standard SAE objective: L1 weighted by the decoder norms, which are
                # free and start at 0.1 (its decoder_init_norm); b_dec from zero
                "expansion_factor": args.expansion,
                "decoder_unit_norm": not standard,
                "decoder_init_norm": 0.1 if standard else 1.0,
                "b_dec_init": "zeros" if standard else "geometric_median",
            },
            logging={"progress": False},
        )
        self.trainer = Trainer(cfg, store=TensorStore(train_acts, args.batch, hook))
        self.trainer.init_b_dec()
        self.state = self.trainer.saes[0]
        self.W_enc = self.state.sae.W_enc.detach()

    def step(self, x: torch.Tensor) -> None:
        self.trainer.train_one(self.state, x)
        self.trainer.step += 1

    def train_all(self) -> None:
        self.trainer.train_steps(self.trainer.cfg.total_steps)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sae = self.state.sae
        acts = sae.encode(x)
        return sae.decode(acts), (acts > 0).sum(-1).float()


# ---- SAELens -------------------------------------------------------------------------------------


class SAELens(Tool):
    """SAELens's TrainingSAE with the body of its SAETrainer._train_step (sae_lens 6.x)."""

    def __init__(self, args: argparse.Namespace, train_acts: torch.Tensor) -> None:
        from sae_lens.saes.sae import TrainStepInput

        self.TrainStepInput = TrainStepInput
        d_in, d_sae = train_acts.shape[1], train_acts.shape[1] * args.expansion
        if args.arch == "topk":
            from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig

            self.sae = TopKTrainingSAE(
                TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=args.k, device="cpu")
            )
            self.coefficients: dict[str, float] = {}
        else:
            from sae_lens import StandardTrainingSAE, StandardTrainingSAEConfig

            self.sae = StandardTrainingSAE(
                StandardTrainingSAEConfig(
                    d_in=d_in, d_sae=d_sae, l1_coefficient=args.l1, device="cpu"
                )
            )
            self.coefficients = {"l1": args.l1}
        self.optimizer = torch.optim.Adam(self.sae.parameters(), lr=args.lr, betas=(0.9, 0.999))
        self.steps_since_fired = torch.zeros(d_sae)
        self.n_steps = 0
        self.W_enc = self.sae.W_enc.detach()

    def step(self, x: torch.Tensor) -> None:
        sae = self.sae
        sae.train()
        out = sae.training_forward_pass(
            step_input=self.TrainStepInput(
                sae_in=x,
                coefficients=self.coefficients,
                dead_neuron_mask=self.steps_since_fired > 1000,
                n_training_steps=self.n_steps,
                is_logging_step=False,
            )
        )
        with torch.no_grad():
            did_fire = out.feature_acts.bool().float().sum(-2).bool()
            self.steps_since_fired += 1
            self.steps_since_fired[did_fire] = 0
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.n_steps += 1

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.sae.eval()
        acts = self.sae.encode(x)
        return self.sae.decode(acts), (acts > 0).sum(-1).float()


# ---- sparsify ------------------------------------------------------------------------------------


class Sparsify(Tool):
    """EleutherAI sparsify's SparseCoder with the body of its Trainer's step (eai-sparsify 1.x)."""

    def __init__(self, args: argparse.Namespace, train_acts: torch.Tensor) -> None:
        from sparsify import SparseCoder, SparseCoderConfig

        if args.arch != "topk":
            raise SystemExit("sparsify trains TopK SAEs only")
        d_in = train_acts.shape[1]
        self.sae = SparseCoder(
            d_in,
            SparseCoderConfig(expansion_factor=args.expansion, k=args.k),
            device="cpu",
            dtype=torch.float32,
        )
        with torch.no_grad():
            self.sae.b_dec.data = train_acts[: args.batch].mean(
                0
            )  # as its trainer does on the first batch
        self.optimizer = torch.optim.Adam(self.sae.parameters(), lr=args.lr)
        self.tokens_since_fired = torch.zeros(self.sae.num_latents, dtype=torch.long)
        self.W_enc = (
            self.sae.encoder.weight.detach().T
        )  # [d_in, d_sae] view of its [d_sae, d_in] Linear

    def step(self, x: torch.Tensor) -> None:
        sae = self.sae
        sae.set_decoder_norm_to_unit_norm()
        dead_mask = self.tokens_since_fired > 10_000_000
        out = sae(x, dead_mask=dead_mask)
        loss = out.fvu + (1 / 32) * out.auxk_loss
        loss.backward()
        with torch.no_grad():
            did_fire = torch.zeros(sae.num_latents, dtype=torch.bool)
            did_fire[out.latent_indices.flatten()] = True
            self.tokens_since_fired += x.shape[0]
            self.tokens_since_fired[did_fire] = 0
        sae.remove_gradient_parallel_to_decoder_directions()
        self.optimizer.step()
        self.optimizer.zero_grad()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.sae.set_decoder_norm_to_unit_norm()
        out = self.sae(x)
        return out.sae_out, (out.latent_acts > 0).sum(-1).float()


TOOLS = {"saescope": Saescope, "saelens": SAELens, "sparsify": Sparsify}


# ---- measuring -----------------------------------------------------------------------------------


def time_blocks(
    tool: Tool, batches: list[torch.Tensor], repeats: int
) -> tuple[list[float], list[float]]:
    """Seconds per step of training and of the bare encoder matmul, alternating blocks."""
    out = torch.empty(batches[0].shape[0], tool.W_enc.shape[1])
    W_enc = tool.W_enc  # row- or column-major: mm takes either without a copy
    step_times, mm_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for x in batches:
            torch.mm(x, W_enc, out=out)
        mm_times.append((time.perf_counter() - start) / len(batches))
        start = time.perf_counter()
        for x in batches:
            tool.step(x)
        step_times.append((time.perf_counter() - start) / len(batches))
    return step_times, mm_times


def evaluate(tool: Tool, eval_acts: torch.Tensor, chunk: int = 4096) -> dict[str, float]:
    sq_error, l0_sum = 0.0, 0.0
    for start in range(0, eval_acts.shape[0], chunk):
        x = eval_acts[start : start + chunk]
        recon, l0 = tool.reconstruct(x)
        sq_error += float((recon - x).pow(2).sum())
        l0_sum += float(l0.sum())
    variance = float((eval_acts - eval_acts.mean(0)).pow(2).sum())
    return {"fvu": sq_error / variance, "l0": l0_sum / eval_acts.shape[0]}


def train_all(tool: Tool, train_acts: torch.Tensor, batch: int) -> float:
    start = time.perf_counter()
    if isinstance(tool, Saescope):
        tool.train_all()
    else:
        for i in range(train_acts.shape[0] // batch):
            tool.step(train_acts[i * batch : (i + 1) * batch])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", choices=sorted(TOOLS), required=True)
    parser.add_argument("--arch", choices=["topk", "standard"], default="topk")
    parser.add_argument("--acts", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--expansion", type=int, default=16)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--l1", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--timing-steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    data = torch.load(args.acts)
    train_acts, eval_acts = data["train"], data["eval"]
    batches = [train_acts[i * args.batch : (i + 1) * args.batch] for i in range(args.timing_steps)]

    tool = TOOLS[args.tool](args, train_acts)
    tool.step(batches[0])  # warm-up: first-touch allocations, lazy initialisation
    step_times, mm_times = time_blocks(tool, batches, args.repeats)
    result = {
        "tool": args.tool,
        "arch": args.arch,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "d_in": train_acts.shape[1],
        "d_sae": train_acts.shape[1] * args.expansion,
        "k": args.k if args.arch == "topk" else None,
        "l1_coefficient": args.l1 if args.arch == "standard" else None,
        "batch": args.batch,
        "lr": args.lr,
        "step_s": step_times,
        "matmul_s": mm_times,
        "tokens_per_s": args.batch / min(step_times),
        "matmul_tokens_per_s": args.batch / min(mm_times),
        "fraction_of_matmul": min(mm_times) / min(step_times),
    }
    if not args.no_quality:
        fresh = TOOLS[args.tool](args, train_acts)
        seconds = train_all(fresh, train_acts, args.batch)
        result.update(
            train_tokens=train_acts.shape[0] // args.batch * args.batch,
            train_s=seconds,
            eval_tokens=eval_acts.shape[0],
        )
        result.update(evaluate(fresh, eval_acts))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}))


if __name__ == "__main__":
    main()
