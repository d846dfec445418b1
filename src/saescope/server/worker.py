"""Where live inference runs, seen from the server: `LiveEngine.run(command)` awaits the JSON
bytes of one answer (a command is one of saescope.server.engine's request dataclasses).

`ProcessEngine` (what `saescope serve` uses) runs the model in a process of its own, with its
own torch threads and a lower CPU priority: a forward never holds the server's GIL or event
loop, so feature pages keep flowing while the model works, and the model gets what CPU the
pages leave. `ThreadEngine` runs the same loop on a thread of the server's process, for a
model the caller already loaded (tests, notebooks). Both answer requests one batch at a time
(saescope.server.engine.serve_requests).

Every request is sent with the engine's time limit (timeout_s): the worker stops it at its
deadline and answers TimeLimitExceeded (a 503 here). A worker that does not answer within
the limit plus a grace (STALL_GRACE_S) is stuck in one step: ProcessEngine kills it, and it is
restarted like a worker that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from saescope.errors import SaescopeError
from saescope.models import HookedModel
from saescope.sae import SAE
from saescope.server.engine import (
    ERRORS,
    Busy,
    Cancel,
    Command,
    LiveModels,
    LiveUnavailable,
    Reply,
    Request,
    serve_requests,
    stamped,
)
from saescope.server.sources import ViewerSource, open_source
from saescope.store import FeatureStore

START_TIMEOUT_S = 600  # loading (and on first use dequantising) the model
MAX_WAITING = 64  # live requests queued or running, all clients together
MAX_WAITING_PER_CLIENT = 8  # ... and from one client address
JOB_TIMEOUT_S = 120.0  # a request's time limit, queue and run (503 when reached)
STALL_GRACE_S = 30.0  # past the limit without any answer, the worker is stuck in one step
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 15.0, 60.0)  # waits before restarting a dead worker


class LiveTimeout(SaescopeError):
    """A live request stopped at its time limit, or not answered (HTTP 503, Retry-After)."""

    retry_after_s = 10


# the worker's errors as this side raises them: a job stopped at its limit is a LiveTimeout
REPLY_ERRORS: dict[str, type[SaescopeError]] = {**ERRORS, "TimeLimitExceeded": LiveTimeout}


class LiveEngine:
    """Requests in, JSON bytes out; `live(sae_id)` and `unavailable` say which SAEs it serves."""

    def __init__(self) -> None:
        self.unavailable: dict[str, str] = {}
        self.live_ids: set[str] = set()
        self._ids = itertools.count()
        self._pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self._clients: dict[int, str] = {}  # request id -> client address
        self._lock = threading.Lock()
        self._dead: str | None = None
        self.restarts, self.last_exit = 0, None  # what /api/health shows
        self.timeout_s = JOB_TIMEOUT_S  # each request's time limit (sent along with it)
        self.grace_s = STALL_GRACE_S
        self._progress_at = time.monotonic()  # the worker's last answer, or since it had work

    def health(self) -> dict[str, Any]:
        """The worker's state: "ok", "restarting" or "down", restarts so far, queue length."""
        with self._lock:
            waiting = len(self._pending)
        state = "ok" if self._dead is None else self._state_when_dead()
        return {
            "state": state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "waiting": waiting,
            "detail": self._dead,
        }

    def _state_when_dead(self) -> str:
        return "down"

    def live(self, sae_id: str) -> bool:
        return sae_id in self.live_ids

    def check(self, sae_id: str) -> None:
        """Refuse at once (409) a request for an SAE without live inference."""
        if self._dead is not None:
            raise LiveUnavailable(self._dead)
        if sae_id not in self.live_ids:
            reason = self.unavailable.get(sae_id, f"the SAE {sae_id!r} is not in the store")
            raise LiveUnavailable(f"live inference is off for this SAE: {reason}.")

    async def run(self, command: Command, client: str = "") -> bytes:
        """The answer to one command, after the requests queued before it. Refused (429) when
        `client` (its address) or everyone together has too many waiting; cancelled in the
        worker when this coroutine is cancelled (the client left) or times out (503)."""
        self.check(command.sae_id)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            mine = sum(1 for c in self._clients.values() if c == client)
            if mine >= MAX_WAITING_PER_CLIENT or len(self._pending) >= MAX_WAITING:
                who = "from this client" if mine >= MAX_WAITING_PER_CLIENT else "in all"
                raise Busy(
                    f"live inference is busy: {mine if who[0] == 'f' else len(self._pending)} "
                    f"requests {who} are waiting (at most {MAX_WAITING_PER_CLIENT} per client, "
                    f"{MAX_WAITING} in all); try again shortly."
                )
            req_id = next(self._ids)
            if not self._pending:
                self._progress_at = time.monotonic()
            self._pending[req_id] = (loop, future)
            self._clients[req_id] = client
        try:
            self._send((req_id, command, self.timeout_s))
        except (OSError, ValueError) as err:
            self._fail_all(self._lost(err))
        try:
            # the worker answers at the limit itself; the grace covers one step that cannot stop
            return await asyncio.wait_for(future, self.timeout_s + self.grace_s)
        except TimeoutError:
            self.cancel(req_id)
            stuck = self._stalled()
            raise LiveTimeout(
                f"live inference did not answer within its time limit of {self.timeout_s:g} s"
                + ("; the stuck worker is being restarted" if stuck else " (the worker is busy)")
                + ": try again later or with a shorter text."
            ) from None
        except asyncio.CancelledError:
            self.cancel(req_id)
            raise
        finally:
            with self._lock:
                self._pending.pop(req_id, None)
                self._clients.pop(req_id, None)

    def cancel(self, req_id: int) -> None:
        """Nobody waits for request `req_id` any more: the worker drops it if not yet run."""
        with self._lock:
            self._pending.pop(req_id, None)
            self._clients.pop(req_id, None)
        with contextlib.suppress(OSError, ValueError):
            self._send((-1, Cancel(req_id)))

    def _stalled(self) -> bool:
        """A request was not answered in time: when the worker has answered nothing for longer
        than the limit and the grace, it is stuck; True when it is being restarted."""
        return False

    def _lost(self, err: Exception) -> str:
        """Why a request could not be sent to the worker."""
        return f"the inference worker cannot be reached ({err})"

    def _deliver(self, reply: Reply) -> None:
        """From the worker's side: hand one reply to the request waiting for it."""
        req_id, ok, payload = reply
        with self._lock:
            self._progress_at = time.monotonic()
            waiting = self._pending.pop(req_id, None)
        if waiting is not None:
            loop, future = waiting
            loop.call_soon_threadsafe(_settle, future, ok, payload)

    def _fail_all(self, why: str) -> None:
        """The worker is gone: every waiting request and every later one gets a 409 saying so."""
        self._dead = why
        with self._lock:
            waiting, self._pending, self._clients = list(self._pending.values()), {}, {}
        for loop, future in waiting:
            loop.call_soon_threadsafe(_settle, future, False, ("LiveUnavailable", why))

    def decoder(self, sae_id: str) -> Callable[[], np.ndarray] | None:
        """W_dec [d_sae, d_in] of an SAE this engine holds in this process, read when called;
        None when the weights live elsewhere (the worker process) or were never loaded."""
        return None

    def _send(self, request: Request | None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _settle(future: asyncio.Future, ok: bool, payload: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(payload)
    else:
        kind, message = payload
        cls = REPLY_ERRORS.get(kind, RuntimeError)
        error = cls.__new__(cls)  # the message as the worker wrote it (ConfigError's own
        Exception.__init__(error, message)  # __init__ wants the field parts)
        future.set_exception(error)


class ThreadEngine(LiveEngine):
    """The request loop on one thread of this process, over models given or loaded here."""

    def __init__(
        self,
        source: ViewerSource,
        model: HookedModel | None = None,
        saes: dict[str, SAE] | None = None,
    ) -> None:
        super().__init__()
        self.models = LiveModels(source, model=model, saes=saes)
        self.unavailable, self.live_ids = self.models.unavailable, set(self.models.saes)
        self._inbox: queue.Queue = queue.Queue()
        self._thread = threading.Thread(
            target=serve_requests,
            args=(self.models, self._inbox, self._deliver),
            daemon=True,
            name="saescope-live",
        )
        self._thread.start()

    def decoder(self, sae_id: str) -> Callable[[], np.ndarray] | None:
        sae = self.models.saes.get(sae_id)
        if sae is None:
            return None
        return lambda: sae.W_dec.detach().float().numpy()

    def _send(self, request: Request | None) -> None:
        self._inbox.put(stamped(request))

    def close(self) -> None:
        self._inbox.put(None)


class ProcessEngine(LiveEngine):
    """The request loop in a child process that loads the models itself; a worker that dies
    (killed, out of memory) is started again after a back-off (RESTART_BACKOFF_S)."""

    def __init__(self, source: ViewerSource, threads: int = 1, nice: int = 5) -> None:
        super().__init__()
        self._spec = {
            "store": store_location(source.store),
            "sae_dirs": {k: str(v) for k, v in source.sae_dirs.items()},
            "threads": threads,
            "nice": nice,
        }
        self._send_lock, self._join_lock = threading.Lock(), threading.Lock()
        self._closing = threading.Event()
        self._restarting = False
        self._start()
        self._reader = threading.Thread(
            target=self._read_replies, daemon=True, name="saescope-live-replies"
        )
        self._reader.start()

    def _start(self) -> None:
        context = mp.get_context("spawn")  # never fork a process holding threads and a loop
        requests_in, requests_out = context.Pipe(duplex=False)  # (reading end, writing end)
        replies_in, replies_out = context.Pipe(duplex=False)
        self._process = context.Process(
            target=worker_main,
            args=(self._spec, requests_in, replies_out),
            daemon=True,
            name="saescope-live",
        )
        self._process.start()
        requests_in.close()
        replies_out.close()
        self._started(replies_in)
        with self._send_lock:
            self._requests_out, self._replies = requests_out, replies_in

    def _started(self, replies: Connection) -> None:
        """Wait for the worker's ready message: which SAEs it serves, and why not the others."""
        if not replies.poll(START_TIMEOUT_S):
            self._process.kill()
            raise SaescopeError(
                f"the inference worker did not load the model within {START_TIMEOUT_S} s"
            )
        try:
            kind, payload = replies.recv()
        except EOFError:
            raise SaescopeError(
                f"the inference worker exited while loading (exit code "
                f"{self._process.join(5) or self._process.exitcode})"
            ) from None
        if kind != "ready":
            self._process.join(5)
            raise SaescopeError(f"the inference worker failed to start: {payload}")
        self.live_ids, self.unavailable = set(payload["live"]), payload["unavailable"]

    def _read_replies(self) -> None:
        while not self._closing.is_set():
            try:
                reply = self._replies.recv()
            except (EOFError, OSError) as err:
                self._fail_all(self._lost(err))
                if self._closing.is_set() or not self._restart():
                    return
                continue
            self._deliver(reply)

    def _restart(self) -> bool:
        """Start the worker again, waiting longer after each failure; False once given up."""
        self._restarting = True
        try:
            for wait in RESTART_BACKOFF_S:
                if self._closing.wait(wait):
                    return False
                try:
                    self._start()
                except (SaescopeError, OSError) as err:
                    self._dead = f"the inference worker could not be restarted: {err}"
                    continue
                self.restarts += 1
                self._dead = None
                return True
            return False
        finally:
            self._restarting = False

    def _state_when_dead(self) -> str:
        return "restarting" if self._restarting else "down"

    def _stalled(self) -> bool:
        if time.monotonic() - self._progress_at < self.timeout_s + self.grace_s:
            return False
        # the reader thread sees the pipe close: it fails the waiting requests and restarts
        with contextlib.suppress(OSError, ValueError):
            self._process.kill()
        return True

    def _lost(self, err: Exception) -> str:
        """The same words whichever side notices first that the worker died: this reader, or a send
        into the broken pipe. One at a time: a second concurrent join's waitpid finds the child
        already reaped and reads no exit code."""
        with self._join_lock:
            self._process.join(5)
        if self._process.exitcode is None:
            return super()._lost(err)
        self.last_exit = self._process.exitcode
        return (
            f"the inference worker exited (exit code {self._process.exitcode}); it is being "
            "restarted: try again in a few seconds"
        )

    def _send(self, request: Request | None) -> None:
        with self._send_lock:
            self._requests_out.send(request)

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError, ValueError):
            self._send(None)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


def store_location(store: FeatureStore) -> str:
    """What the worker opens: the SQLite file, or the full PostgreSQL URL (password included)."""
    if store.backend == "sqlite":
        return store.where
    return store.engine.url.render_as_string(hide_password=False)


def worker_main(spec: dict[str, Any], requests: Connection, replies: Connection) -> None:
    """The worker process: load, say ready, then answer requests until told to stop."""
    import torch

    # Ctrl-C reaches the whole process group: the server stops the worker itself (close()).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec["nice"]:
        os.nice(spec["nice"])  # pages first: the model takes the CPU they leave
    # More intra-op threads than free cores makes every forward slower on a shared machine.
    torch.set_num_threads(max(1, spec["threads"]))
    try:
        models = LiveModels(open_source(spec["store"], spec["sae_dirs"]))
    except Exception as err:
        replies.send(("error", f"{type(err).__name__}: {err}"))
        return
    replies.send(("ready", {"live": sorted(models.saes), "unavailable": models.unavailable}))
    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(requests, inbox), daemon=True).start()
    serve_requests(models, inbox, replies.send)


def _pump(requests: Connection, inbox: queue.Queue) -> None:
    """Requests from the pipe into the loop's queue, so the server never waits to send."""
    while True:
        try:
            inbox.put(stamped(requests.recv()))
        except (EOFError, OSError):
            inbox.put(None)
            return
