"""Training diagnostics (``train.diagnostics``): what happens inside a network while it trains.

Every record the Trainer writes after an evaluation or at the end of an epoch gets a
"diagnostics" entry covering the steps since the previous such record::

    "diagnostics": {
      "steps": 109, "observed_steps": 28,
      "layers": {"layers.1": {"activation": "relu", "units": 64, "dead": 0.08}},
      "weights": {"layers.0.weight": {"norm": 7.9, "grad_norm": 0.031, "update_ratio": 0.12}},
      "warnings": []
    }

- ``layers``: each activation module of :data:`ACTIVATION_MODULES` (the modules of the models'
  activation table, :data:`ffnlp.models.activations.ACTIVATIONS`; the training package imports
  nothing from the models, and a test keeps the two in step) found in the model, watched by a
  forward hook on training batches. ReLU family (relu, leaky_relu, elu, gelu): ``dead``, the
  fraction of units whose output was never above zero on the observed batches. tanh and
  hardtanh: ``saturated``, the fraction of outputs with |h| > 0.97; sigmoid: outside
  [0.03, 0.97]. In those flat regions the gradient all but vanishes.
- ``weights``: each trained parameter with two or more dimensions (weight matrices and embedding
  tables, not biases): ``norm`` ||W||, ``grad_norm`` the mean gradient norm over the observed
  steps (absent when the step makes no gradients, e.g. a fused SGD update), ``update_ratio``
  ||W - W_prev|| / ||W_prev|| with W_prev the weights at the previous record (at the start of the
  fit for the first one): how far the record's ``steps`` steps moved the matrix.
- ``warnings``: the advice issued at this record (each kind once per fit, also logged):
  the loss diverging (the learning rate too high), the loss flat from the start (too low), and
  more than half of a layer's units dead or saturated.

It names no model or task. Between two records it observes every k-th step, about
:data:`OBSERVED_EXAMPLES` examples' worth (at least :data:`MIN_OBSERVED_STEPS` steps), so its cost
stays small whatever the epoch length; the loss curve it judges comes from the trainer's running
loss, which costs nothing. At each record it compares the weights with a copy taken at the
previous one (memory: the weight matrices once more). When ``train.diagnostics`` is off the
Trainer does not create it: no hook, no copy of the weights.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ffnlp.training.callbacks import Callback

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer

log = logging.getLogger(__name__)

OBSERVED_EXAMPLES = 512  # examples watched between two records: enough to tell a dead unit
MIN_OBSERVED_STEPS = 4  # ...in at least this many steps (gradient norms are means over them)
RELU_FAMILY = ("relu", "leaky_relu", "elu", "gelu")  # "dead" = output never above zero
DEAD_WARNS = ("relu",)  # where a unit that never fires also passes no gradient back
SATURATION_BOUNDS = {  # outputs outside (low, high) sit where the curve is flat
    "tanh": (-0.97, 0.97),
    "hardtanh": (-0.97, 0.97),
    "sigmoid": (0.03, 0.97),
}
DIVERGE_FACTOR = 2.0  # the mean loss since the last record above this x the first step's
OVERFLOW_FACTOR = 100.0  # a single step's loss above this x the first step's: heading for inf
PLATEAU_TOLERANCE = 0.01  # the loss still within 1% of its start...
PLATEAU_STEPS = 200  # ...after at least this many steps (Adam at 1e-3 can take 50 to move 1%)
START_STEPS = 10  # the plateau test's reference: the mean loss of the first steps
MASS_FRACTION = 0.5  # a layer with more than half its units dead or saturated gets a warning


ACTIVATION_MODULES: dict[type[nn.Module], str] = {  # module class -> its activation name
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.ELU: "elu",
    nn.GELU: "gelu",
    nn.Tanh: "tanh",
    nn.Hardtanh: "hardtanh",
    nn.Sigmoid: "sigmoid",
}


@dataclass
class LayerWatch:
    """What one hidden layer's outputs did on the observed batches since the last record."""

    name: str
    activation: str
    fired: torch.Tensor | None = None  # (H,) bool: the unit's output was above zero at least once
    saturated: torch.Tensor | None = None  # () count of outputs in the flat region
    outputs: int = 0  # outputs seen (examples x units)

    @torch.no_grad()
    def observe(self, h: torch.Tensor) -> None:
        h = h.detach()
        h = h.reshape(-1, h.shape[-1]) if h.dim() > 1 else h.reshape(1, -1)  # (B, H)
        if self.activation in RELU_FAMILY:
            fired = (h > 0).any(0)  # (H,)
            if self.fired is not None and self.fired.shape == fired.shape:
                fired = self.fired | fired
            self.fired = fired
        if self.activation in SATURATION_BOUNDS:
            low, high = SATURATION_BOUNDS[self.activation]
            count = ((h < low) | (h > high)).sum()
            self.saturated = count if self.saturated is None else self.saturated + count
            self.outputs += h.numel()

    def summary(self) -> dict[str, Any] | None:
        """The record's entry for this layer (None when nothing was observed); then reset."""
        out: dict[str, Any] = {"activation": self.activation}
        if self.fired is not None:
            out["units"] = int(self.fired.numel())
            out["dead"] = float((~self.fired).float().mean())
        if self.saturated is not None and self.outputs:
            out["saturated"] = float(self.saturated) / self.outputs
        self.fired, self.saturated, self.outputs = None, None, 0
        return out if len(out) > 1 else None


@dataclass
class LossCurve:
    """Per-step training losses, read off the trainer's running sum (no extra work per step)."""

    first: float | None = None  # the first step's loss: the untrained network
    first_steps: list[float] = field(default_factory=list)  # the first START_STEPS losses
    window: list[float] = field(default_factory=list)  # the losses since the last record
    largest_drift: float = 0.0  # how far the windows' means have moved from the start, relatively
    seen_sum: float = 0.0  # the trainer's loss_sum / loss_count when last read
    seen_count: int = 0

    def read(self, trainer: Trainer) -> float | None:
        """The loss of the step just taken (None when it cannot be told)."""
        if trainer.loss_count < self.seen_count:  # a new epoch reset the running sum
            self.seen_sum, self.seen_count = 0.0, 0
        n = trainer.loss_count - self.seen_count
        loss = (trainer.loss_sum - self.seen_sum) / n if n > 0 else None
        self.seen_sum, self.seen_count = trainer.loss_sum, trainer.loss_count
        if loss is None or not math.isfinite(loss):
            return None
        if self.first is None:
            self.first = loss
        if len(self.first_steps) < START_STEPS:
            self.first_steps.append(loss)
        self.window.append(loss)
        return loss

    @property
    def start(self) -> float | None:
        return sum(self.first_steps) / len(self.first_steps) if self.first_steps else None


class TrainingDiagnostics(Callback):
    """Dead and saturated units, gradient norms and update ratios, and advice, into the records
    written at evaluations and epoch ends (see the module's docstring). Installed by the Trainer
    when ``train.diagnostics`` is true."""

    def __init__(self, observed_per_record: int | None = None):
        # steps watched between two records; None: OBSERVED_EXAMPLES' worth of batches
        self.observed_per_record = observed_per_record
        self.layers: dict[nn.Module, LayerWatch] = {}
        self.handles: list[RemovableHandle] = []
        self.weights: list[tuple[str, nn.Parameter]] = []
        self.previous: list[torch.Tensor] = []  # the weights at the last record
        self.previous_norms: list[float] = []  # and their norms
        self.grad_sum: list[torch.Tensor | None] = []
        self.stride = 1
        self.observing = False
        self.observed = 0  # steps observed since the last record
        self.last_step = 0  # trainer.step at the last record
        self.loss = LossCurve()
        self.issued: list[str] = []  # keys of the warnings given so far (each kind once)
        self.pending: list[str] = []  # warnings given between records, for the next record

    # -------------------------------------------------------------------------------- hooks
    def on_fit_start(self, trainer: Trainer) -> None:
        model = trainer.model
        kinds = ACTIVATION_MODULES  # matched by exact class: ReLU6 (a Hardtanh) is no hardtanh
        names = {m: n for n, m in model.named_modules()}
        self.layers = {
            m: LayerWatch(names[m], kinds[type(m)]) for m in model.modules() if type(m) in kinds
        }
        self.handles = [m.register_forward_hook(self._hook) for m in self.layers]
        self.weights = [
            (n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2
        ]
        self.previous = [p.detach().clone() for _, p in self.weights]
        self.previous_norms = [float(torch.linalg.vector_norm(w)) for w in self.previous]
        self.grad_sum = [None] * len(self.weights)
        period = trainer.config.eval_every or trainer.steps_per_epoch
        watched = self.observed_per_record or max(
            MIN_OBSERVED_STEPS, -(-OBSERVED_EXAMPLES // trainer.config.batch_size)
        )
        self.stride = max(1, period // max(1, watched))
        self.last_step = trainer.step
        self.observed = 0
        self.observing = trainer.step % self.stride == 0

    def on_fit_end(self, trainer: Trainer) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.previous, self.previous_norms = [], []

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.loss.seen_sum, self.loss.seen_count = 0.0, 0

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if self.observing and module.training and torch.is_tensor(output):
            self.layers[module].observe(output)

    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        if self.observing:
            self._add_gradient_norms()
            self.observed += 1
        self.observing = trainer.step % self.stride == 0  # whether to watch the next step
        step_loss = self.loss.read(trainer)
        first = self.loss.first
        if (
            step_loss is not None
            and first is not None
            and step_loss > OVERFLOW_FACTOR * max(first, 1e-8)
        ):
            lr = trainer.config.lr
            self._warn(
                "diverging",
                f"the training loss reached {step_loss:.4g} at step {trainer.step}, "
                f"{step_loss / first:.0f} times its first value ({first:.4g}): it is heading for "
                f"overflow; the learning rate is too high: try train.lr = {lr / 10:g} (now {lr:g})",
            )

    @torch.no_grad()
    def _add_gradient_norms(self) -> None:
        for i, (_, p) in enumerate(self.weights):
            g = p.grad
            if g is None:
                continue
            if g.is_sparse:
                g = g.coalesce().values()
            norm = torch.linalg.vector_norm(g)
            previous = self.grad_sum[i]
            self.grad_sum[i] = norm if previous is None else previous + norm

    # ------------------------------------------------------------------------------- record
    def on_record(self, trainer: Trainer, record: dict[str, Any]) -> None:
        steps = trainer.step - self.last_step
        if record.get("event") == "step" or steps <= 0:
            return
        layers = {}
        for watch in self.layers.values():
            entry = watch.summary()
            if entry is not None:
                layers[watch.name] = entry
        weights = self._weight_entries()
        self._judge(trainer, layers)
        record["diagnostics"] = {
            "steps": steps,
            "observed_steps": self.observed,
            "layers": layers,
            "weights": weights,
            "warnings": self.pending,
        }
        self.pending = []
        self.observed = 0
        self.last_step = trainer.step

    @torch.no_grad()
    def _weight_entries(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for i, (name, p) in enumerate(self.weights):
            w, before, norm_before = p.detach(), self.previous[i], self.previous_norms[i]
            norm = float(torch.linalg.vector_norm(w))
            entry = {"norm": norm}
            grad = self.grad_sum[i]
            if grad is not None and self.observed:
                entry["grad_norm"] = float(grad) / self.observed
            moved = float(torch.linalg.vector_norm(before.sub_(w)))  # in place: no temporary
            entry["update_ratio"] = moved / norm_before if norm_before > 0 else math.inf
            out[name] = entry
            before.copy_(w)
            self.previous_norms[i] = norm
            self.grad_sum[i] = None
        return out

    def _judge(self, trainer: Trainer, layers: dict[str, dict[str, Any]]) -> None:
        """The warnings of this record: the loss curve first, then the layers."""
        lr = trainer.config.lr
        window, first, start = self.loss.window, self.loss.first, self.loss.start
        self.loss.window = []
        if window and first is not None and start is not None:
            mean = sum(window) / len(window)
            if mean > DIVERGE_FACTOR * max(first, 1e-8):
                self._warn(
                    "diverging",
                    f"the training loss rose from {first:.4g} (first step) to {mean:.4g} (mean "
                    f"of the last {len(window)} steps): the learning rate is probably too high; "
                    f"try train.lr = {lr / 10:g} (now {lr:g})",
                )
            drift = abs(mean - start) / max(abs(start), 1e-12)
            self.loss.largest_drift = max(self.loss.largest_drift, drift)
            if trainer.step >= PLATEAU_STEPS and self.loss.largest_drift <= PLATEAU_TOLERANCE:
                self._warn(
                    "plateau",
                    f"after {trainer.step} steps the training loss is still within "
                    f"{PLATEAU_TOLERANCE:.0%} of where it started ({start:.4g} -> {mean:.4g}): "
                    f"is the learning rate too low? try train.lr = {lr * 10:g} (now {lr:g})",
                )
        for name, entry in layers.items():
            act = entry["activation"]
            if act in DEAD_WARNS and entry.get("dead", 0.0) > MASS_FRACTION:
                self._warn(
                    f"dead:{name}",
                    f"{name}: {entry['dead']:.0%} of its {entry['units']} {act} units never fired "
                    f"on the last {self.observed} observed training batches (a dead unit passes "
                    f"no gradient back): lower train.lr (now {lr:g}), use a leaky_relu "
                    "activation, or another initialisation scheme",
                )
            if entry.get("saturated", 0.0) > MASS_FRACTION:
                low, high = SATURATION_BOUNDS[act]
                region = f"|h| > {high}" if low == -high else f"h outside [{low}, {high}]"
                self._warn(
                    f"saturated:{name}",
                    f"{name}: {entry['saturated']:.0%} of its {act} outputs are saturated "
                    f"({region}), where the gradient vanishes: start from smaller weights (another "
                    "initialisation scheme or a smaller init std), normalise the inputs, or "
                    f"lower train.lr (now {lr:g})",
                )

    def _warn(self, key: str, message: str) -> None:
        if key in self.issued:
            return
        self.issued.append(key)
        self.pending.append(message)
        log.warning("%s", message)

    # ---------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        curve = self.loss
        return {
            "diagnostics": {
                "issued": list(self.issued),
                "first": curve.first,
                "first_steps": list(curve.first_steps),
                "largest_drift": curve.largest_drift,
            }
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("diagnostics")
        if not saved:
            return
        self.issued = list(saved["issued"])
        self.loss.first = saved["first"]
        self.loss.first_steps = list(saved["first_steps"])
        self.loss.largest_drift = saved["largest_drift"]
