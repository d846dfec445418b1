"""An in-process Hugging Face chat model as an auto-interp backend: runs offline, no server.

Any HF chat model by hub id or directory; "smollm2" (the default) is the bundled
SmolLM2-135M-Instruct, loaded through saescope.models (its fp32 weights cached once). Requests
that arrive together are generated as one left-padded batch; the log-probabilities of the answer
tokens (and the top alternatives) come from the logits of each generation step.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from saescope.autointerp.backend import BackendError, ChatRequest, Completion, TokenLogprob
from saescope.errors import SaescopeError

DEFAULT_MODEL = "smollm2"


@dataclass
class _Pending:
    request: ChatRequest
    answer: asyncio.Future[Completion]


class TransformersBackend:
    name = "transformers"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "cpu",
        batch_size: int = 8,
        dtype: str | None = None,
        threads: int | None = None,
    ) -> None:
        """`threads`: torch's CPU threads (process-wide); on a busy machine 1 is much faster
        than contending for every core."""
        if batch_size < 1:
            raise BackendError(f"batch_size: got {batch_size!r}; expected >= 1.")
        self.model, self.device, self.batch_size, self.dtype = model, device, batch_size, dtype
        self.max_concurrency = batch_size
        self.threads = threads
        self._hf: Any = None
        self._tokenizer: Any = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._load_lock: asyncio.Lock | None = None

    async def check(self) -> None:
        await self._ensure_loaded()

    async def complete(self, request: ChatRequest) -> Completion:
        await self._ensure_loaded()
        assert self._queue is not None
        answer: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(request, answer))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._serve())
        return await answer

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # closing anyway
                await self._worker
            self._worker = None
        self._queue, self._load_lock = None, None  # they belong to this event loop

    async def _ensure_loaded(self) -> None:
        if self._load_lock is None:
            self._load_lock = asyncio.Lock()
        async with self._load_lock:
            if self._hf is None:
                self._hf, self._tokenizer = await asyncio.to_thread(self._load)
            if self._queue is None:
                self._queue = asyncio.Queue()

    def _load(self) -> tuple[Any, Any]:
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            if self.model == DEFAULT_MODEL or self.model.endswith(".gguf"):
                from saescope.models import load_model  # heavy import

                hooked = load_model(self.model, device=self.device, dtype=self.dtype)
                hf, tokenizer = hooked.hf_model, hooked.tokenizer
            else:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(self.model)
                # transformers' annotations of from_pretrained(...).to reject a device string
                hf = AutoModelForCausalLM.from_pretrained(
                    self.model, dtype=getattr(torch, self.dtype or "float32")
                ).to(self.device)  # pyright: ignore[reportArgumentType]
        except SaescopeError as err:
            raise BackendError(str(err)) from None
        except (OSError, ValueError, KeyError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise BackendError(f"model: could not load {self.model!r}: {first}") from None
        if hf is None:
            raise BackendError(f"model: {self.model!r} loaded without its Hugging Face model")
        if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
            raise BackendError(
                f"model: {self.model!r} has no chat template; auto-interp needs a chat model."
            )
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return hf.eval(), tokenizer

    async def _serve(self) -> None:
        """Take what is queued (up to batch_size, same temperature) and generate it as a batch."""
        assert self._queue is not None
        while not self._queue.empty():
            first = await self._queue.get()
            await asyncio.sleep(0)  # let requests made in the same tick join the batch
            batch, rest = [first], []
            while not self._queue.empty() and len(batch) < self.batch_size:
                item = self._queue.get_nowait()
                same = item.request.temperature == first.request.temperature
                (batch if same else rest).append(item)
            for item in rest:
                self._queue.put_nowait(item)
            try:
                answers = await asyncio.to_thread(self._generate, [p.request for p in batch])
            except Exception as err:  # each waiting request gets the error
                for p in batch:
                    if not p.answer.done():
                        p.answer.set_exception(err)
                continue
            for p, answer in zip(batch, answers, strict=True):
                if not p.answer.done():
                    p.answer.set_result(answer)

    @torch.inference_mode()
    def _generate(self, requests: list[ChatRequest]) -> list[Completion]:
        tok = self._tokenizer
        texts = [
            tok.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in r.messages],
                add_generation_prompt=True,
                tokenize=False,
            )
            for r in requests
        ]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self._hf.device
        )
        temperature = requests[0].temperature
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature}
            if temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        out = self._hf.generate(
            **enc,
            max_new_tokens=max(r.max_tokens for r in requests),
            pad_token_id=tok.pad_token_id,
            output_logits=True,
            return_dict_in_generate=True,
            **sampling,
        )
        new = out.sequences[:, enc["input_ids"].shape[1] :]  # [batch, steps]
        logprobs = torch.log_softmax(torch.stack(out.logits, dim=1).float(), dim=-1)
        stops = set(_as_list(self._hf.generation_config.eos_token_id)) | {tok.eos_token_id}
        prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
        return [
            self._completion(r, new[i], logprobs[i], stops, int(prompt_lengths[i]))
            for i, r in enumerate(requests)
        ]

    def _completion(
        self,
        request: ChatRequest,
        ids: torch.Tensor,
        logprobs: torch.Tensor,  # [steps, vocab]
        stops: set[int],
        prompt_tokens: int,
    ) -> Completion:
        ids_list = ids.tolist()[: request.max_tokens]
        end = next((i for i, t in enumerate(ids_list) if t in stops), None)
        finish = "stop" if end is not None else "length"
        kept = ids_list[:end] if end is not None else ids_list
        tok = self._tokenizer
        token_logprobs = None
        if request.logprobs:
            token_logprobs = []
            for step, token_id in enumerate(kept):
                row = logprobs[step]
                top = (
                    torch.topk(row, max(request.top_logprobs, 0)) if request.top_logprobs else None
                )
                token_logprobs.append(
                    TokenLogprob(
                        token=tok.decode([token_id]),
                        logprob=float(row[token_id]),
                        top={}
                        if top is None
                        else {
                            tok.decode([int(t)]): float(v)
                            for v, t in zip(top.values.tolist(), top.indices.tolist(), strict=True)
                        },
                    )
                )
        return Completion(
            text=tok.decode(kept, skip_special_tokens=True),
            prompt_tokens=prompt_tokens,
            completion_tokens=len(kept) + (1 if end is not None else 0),
            finish_reason=finish,
            logprobs=token_logprobs,
        )


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [int(value)]
