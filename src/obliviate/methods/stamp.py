"""STAMP: a training-free closed-form edit of one MLP down-projection that makes a model refuse.

For each edited layer the down-projection `v = W k` is treated as a linear key-value memory.
Keys are its inputs (the MLP hidden activations) at the last prompt token(s) of the forget
prompts; targets are values that make the model refuse, either learned by a few Adam steps on
an additive output shift (ROME/MEMIT's v*) or read off the model's own activations on refusal
prompts (their mean, or a projection on their top directions). A solver from `stamp_solvers`
then computes `dW` so that the forget keys map to their targets while retain keys keep their
outputs. Everything a caller may want to tune is a field of `StampHyperParams`.

Entry points: `apply_stamp(model, tok, requests, hparams, context) -> (model, weights_copy)`
(the EasyEdit contract) and `stamp_edit(...) -> StampEdit`, which also reports the keys,
targets, deltas, diagnostics and per-phase timings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import answer_logits, encode_pair, pad_batch
from obliviate.hooks import (
    StopForward,
    add_hooks,
    down_proj_path,
    down_proj_weight,
    get_module,
    layer_hidden,
    layer_output,
    layer_path,
    mlp_output_adds_to_layer_output,
    num_layers,
    start_above_layer,
    with_layer_hidden,
)
from obliviate.methods.stamp_cache import StampCache
from obliviate.methods.stamp_solvers import (
    LowRankCovariance,
    RidgeHold,
    moment_factor,
    ridge_held_update,
    solve_exact,
    solve_lowrank,
    solve_ridge,
    stiffen_top_directions,
)
from obliviate.yaml_config import check_fields, read_yaml_mapping

SOLVERS = ("exact", "ridge", "lowrank")
TARGETS = ("vstar", "refusal_mean", "refusal_subspace")
KEY_POSITIONS = ("last", "subject", "answer")
SELECTION_SITES = ("residual", "mlp_out")
_F64 = torch.float64


@dataclass
class StampHyperParams:
    """Every knob of a STAMP edit; tuning STAMP means changing these, not the code.

    - `layers`: decoder layers to edit (several: edited in order, each taking its share of the
      remaining shift, as MEMIT spreads an edit); `None` picks the single layer with the largest
      cosine separation between forget and refusal activations among `layer_candidates`
      (`None` = all layers), measured at `selection_site` (layer output or down-proj output).
    - `solver`: "exact" (pseudoinverse with retain keys held fixed), "ridge" (MEMIT covariance
      least squares, `lam`; with fewer keys than half the layer's width, the hold is inverted
      once per state of the statistics and edits in force and each solve is a push-through),
      "lowrank" (ridge on a cached rank-`rank` factorisation).
    - `retain_weight`: (ridge) each retain key (the context's retain prompts, at their key
      position, and with retain answers at every answer token) enters the least squares like a
      forget key whose output must stay as it is, with this weight: the retain buffer's outputs
      are held, not only the average text's.
    - `retain_prompt_boost`: (ridge, with retain answers and key position "answer") the retain
      keys at the last prompt token, where an answer starts or a refusal does, count this many
      times as much as those at answer tokens (a question has one and ~8 of the others). For
      many sequential edits: on the lab model 5 lost 6.7 / 54.5 retain points after 20 / 100
      forget commands instead of 9.2 / 64.8 (the lost answers: other people's questions
      refused), but single commands refused hazards less (8 hazards, trained / paraphrase /
      other language: 0.98 / 0.78 / 0.96 against 1.0 / 0.81 / 0.99), so the default is 1.
    - `protected_rank`, `protected_weight`: (ridge) the `protected_rank` strongest eigen-directions
      of the hold (covariance, retain buffer and earlier edits' keys) are held `protected_weight`
      times its largest eigenvalue harder (AlphaEdit's null space of preserved knowledge, made
      soft), so a long run of edits cannot pile up along the directions every question uses;
      0 = off. One eigendecomposition of the d x d hold whenever the hold changes. On the lab
      model, for 100 sequential people (rank 128 from the second edit on, the patient's default)
      -34 retain points instead of -51; from the first edit on it weakened single commands.
    - `window`: automatic selection edits this many consecutive layers ending at the selected one
      (never below the first candidate), each taking its share of the shift as MEMIT spreads an
      edit: on the lab model layers 1-3 together forgot more and cost retain answers less, over
      20 sequential edits, than the selected layer alone.
    - `min_layer`: with `layer_candidates` None, the first layer automatic selection may pick
      (layer 0 mostly reads token embeddings; on the lab model its edits came out 4-5x the
      weight's norm); capped at the last layer.
    - `cov_floor`: isotropic floor added to the retain covariance, relative to its mean
      eigenvalue, so that `lam C + K K^T` stays invertible with few retain tokens. With neither
      retain prompts nor covariance texts, "ridge" uses C = I (then `lam` has another scale).
    - `target`: "vstar" (Adam on an additive shift of the down-proj output at the key positions
      maximising log P(refusal answer | prompt)), "refusal_mean" (the mean down-proj output on
      refusal prompts), "refusal_subspace" (`v_ref + U U^T (v - v_ref)`, U the top
      `subspace_dim` principal directions of the refusal outputs).
    - `key_position`: "last" takes keys at the end of the prompt; "subject" at the end of the
      last mention of the request's `subject` in each prompt (ROME's subject token: the edit then
      changes what the model recalls about that subject wherever it is asked); "answer" at the
      last prompt token and at every position of the refusal answer written after it, so the
      whole refusal, not only its first token, is what the edited layer produces. The answer
      positions are keyed on the prompts v* is fitted on (`vstar_prompts`; the others at their
      last prompt token): their targets are the shifts measured there.
    - `key_tokens`: keys are taken at the last `key_tokens` prompt tokens (1 = the last prompt
      token, the position that worked on the lab prototype).
    - `vstar_lr` is in units of the RMS entry of the original outputs at the key positions, so
      one value transfers across models; the shift norm is clamped to `clamp_norm_factor` times
      their mean norm; optimisation stops early once the answer NLL per token < `vstar_stop_loss`.
    - `vstar_prompts`: v* is fitted on this many evenly spaced forget prompts of a request
      (0 = all of them).
    """

    layers: list[int] | None = None
    layer_candidates: list[int] | None = None
    selection_site: str = "residual"
    solver: str = "ridge"
    lam: float = 100.0
    rank: int = 128
    cov_floor: float = 1e-4
    retain_weight: float = 0.0
    retain_prompt_boost: float = 1.0
    protected_rank: int = 0
    protected_weight: float = 10.0
    min_layer: int = 0
    window: int = 1
    target: str = "vstar"
    subspace_dim: int = 8
    key_tokens: int = 1
    key_position: str = "last"
    vstar_steps: int = 40
    vstar_lr: float = 0.2
    clamp_norm_factor: float = 4.0
    vstar_stop_loss: float = 0.05
    vstar_prompts: int = 0
    answer_eos: bool = True
    batch_size: int = 32

    def __post_init__(self) -> None:
        _choice("solver", self.solver, SOLVERS)
        _choice("target", self.target, TARGETS)
        _choice("selection_site", self.selection_site, SELECTION_SITES)
        _choice("key_position", self.key_position, KEY_POSITIONS)
        for name in ("layers", "layer_candidates"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, (list, tuple)) or not value or not all(isinstance(i, int) for i in value):
                raise ValueError(f"{name} must be a non-empty list of layer indices or null, got {value!r}")
            if len(set(value)) != len(value):
                raise ValueError(f"{name} has repeated layers: {value}")
            setattr(self, name, list(value))
        positive = ("lam", "vstar_lr", "clamp_norm_factor", "vstar_stop_loss")
        for name in positive:
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not (isinstance(self.vstar_prompts, int) and self.vstar_prompts >= 0):
            raise ValueError(f"vstar_prompts must be an integer >= 0, got {self.vstar_prompts!r}")
        for name in ("rank", "key_tokens", "vstar_steps", "batch_size", "window"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("subspace_dim", "protected_rank"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if not self.protected_weight >= 0:
            raise ValueError(f"protected_weight must be >= 0, got {self.protected_weight}")
        if not self.retain_prompt_boost >= 0:
            raise ValueError(f"retain_prompt_boost must be >= 0, got {self.retain_prompt_boost}")
        if not self.retain_weight >= 0:
            raise ValueError(f"retain_weight must be >= 0, got {self.retain_weight}")
        if not (isinstance(self.min_layer, int) and self.min_layer >= 0):
            raise ValueError(f"min_layer must be an integer >= 0, got {self.min_layer!r}")
        if not self.cov_floor >= 0:
            raise ValueError(f"cov_floor must be >= 0, got {self.cov_floor}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> StampHyperParams:
        """Load from a YAML mapping; unknown keys are an error, missing keys take the defaults."""
        return cls.from_dict(read_yaml_mapping(path, "STAMP config"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StampHyperParams:
        check_fields(cls, data)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _choice(name: str, value: str, options: Sequence[str]) -> None:
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(options)}")


@dataclass(frozen=True)
class StampRequest:
    """One thing to forget: its formatted forget prompts and, optionally, the answer to give
    instead (used by the v* target; defaults to the context's refusal answer) and the subject the
    prompts are about (key position "subject"; retain prompts that name it are let go of)."""

    prompts: tuple[str, ...]
    answer: str | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompts", tuple(self.prompts))
        if not self.prompts or not all(isinstance(p, str) and p for p in self.prompts):
            raise ValueError("a STAMP request needs at least one non-empty forget prompt")


@dataclass
class StampContext:
    """What an edit is measured against.

    - `refusal_prompts`: formatted prompts the model refuses (refusal targets, layer selection);
    - `retain_prompts`: formatted prompts whose outputs at the key positions must not move (the
      exact solver holds them fixed; also reported as retain drift);
    - `covariance_texts`: texts whose every token builds the retain covariance of the ridge and
      low-rank solvers (`None` = the retain prompts);
    - `retain_answers`: the answers the retain prompts are given (one per prompt). With key
      position "answer", retain keys are then read at the last prompt token and at every answer
      token, as forget keys are: the edit holds how retain answers continue, not only how they
      start (without them, sequential edits made retain answers break off mid-way into the
      refusal, "Sablewood'm sorry, but I can't share that.");
    - `refusal_answer`: the answer the v* target makes likely, e.g. "I can't share that.";
    - `prior_moments`: per layer, `sum K_p K_p^T` over the keys of earlier edits still in force
      (ridge solver). Their outputs are held where those edits put them, as AlphaEdit keeps
      earlier edits' keys in its normal equations: without it every sequential edit pushes the
      directions forget keys share (e.g. "a question about a person") toward refusal again,
      and after a handful of edits everyone is refused;
    - `vstar_init`: per layer, where each request's v* shifts start (e.g. an earlier attempt's
      `StampEdit.vstar_shifts` on the same weights): an escalated attempt then starts from the
      shift that already nearly made the refusal likely instead of from zero (v* is most of an
      edit's time). A start of another shape than the request's key window is not used.
    """

    refusal_prompts: Sequence[str] = ()
    retain_prompts: Sequence[str] = ()
    retain_answers: Sequence[str] | None = None
    covariance_texts: Sequence[str] | None = None
    refusal_answer: str | None = None
    prior_moments: dict[int, Tensor] = field(default_factory=dict)
    vstar_init: dict[int, list[Tensor]] = field(default_factory=dict)
    cache: StampCache = field(default_factory=StampCache)


@dataclass
class LayerEdit:
    """What was done to one layer: keys (d_in, n), targets for `W k` (d_out, n) and the float64
    `delta` (d_out, d_in) added to the weight, with its diagnostics."""

    layer: int
    param_name: str
    keys: Tensor
    targets: Tensor
    delta: Tensor
    target_miss: float  # ||W' K - V|| / ||W K - V||: 0 = targets met exactly, 1 = no progress
    delta_ratio: float  # ||dW|| / ||W||
    retain_drift: float | None  # ||dW K_r|| / ||W K_r|| on retain keys weighted as held, from their moment (resolution ~1e-8)


@dataclass
class StampEdit:
    """The outcome of `stamp_edit`: originals to restore, what changed, and how long it took."""

    weights_copy: dict[str, Tensor]
    layers: list[int]
    edits: list[LayerEdit]
    layer_scores: dict[int, float] | None = None
    vstar_losses: list[float] = field(default_factory=list)
    vstar_shifts: dict[int, list[Tensor]] = field(default_factory=dict)  # per layer, each request's (d_out, window)
    timings: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- activations


def _fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha1()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def _content_tag(matrix: Tensor) -> tuple:
    """A cheap content fingerprint of a float64 matrix: its shape, its sum and a fixed random
    bilinear form `u^T M v` (equal matrices always agree; different ones practically never do)."""
    g = torch.Generator().manual_seed(len(matrix))
    u, v = (torch.randn(n, generator=g, dtype=_F64).to(matrix.device) for n in matrix.shape)
    return (tuple(matrix.shape), float(matrix.sum()), float(u @ matrix @ v))


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _tokenize(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], key_tokens: int) -> list[list[int]]:
    sequences = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    for prompt, ids in zip(prompts, sequences):
        if len(ids) < key_tokens:
            raise ValueError(f"prompt {prompt!r} has {len(ids)} tokens, fewer than key_tokens={key_tokens}")
    return sequences


def subject_ends(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], subject: str | None) -> list[int]:
    """For each prompt, the number of tokens up to and including the last token of the last
    mention of `subject` (case-insensitive): where subject keys are read."""
    if not subject:
        raise ValueError("key_position 'subject' needs each request's subject")
    ends = []
    for prompt in prompts:
        at = prompt.lower().rfind(subject.lower())
        if at < 0:
            raise ValueError(f"subject {subject!r} does not occur in the forget prompt {prompt!r}")
        char_end = at + len(subject)
        offsets = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        ends.append(sum(1 for start, _ in offsets if start < char_end))
    return ends


def answer_window(
    tokenizer: PreTrainedTokenizerBase, prompt: str, answer: str, add_eos: bool
) -> tuple[list[int], tuple[int, int]]:
    """Token ids of prompt + answer and the [first, end) window of key position "answer": the
    last prompt token up to the one before the last answer token (each predicts an answer token)."""
    ids, labels = encode_pair(tokenizer, prompt, answer, add_eos=add_eos)
    return ids, (labels.count(-100) - 1, len(ids) - 1)


def vstar_indices(n: int, count: int) -> list[int]:
    """The `count` evenly spaced prompts of `n` that v* is fitted on (all when `count` is 0 or >= n)."""
    if not count or n <= count:
        return list(range(n))
    step = n / count
    return [int(i * step) for i in range(count)]


def key_windows(
    tokenizer: PreTrainedTokenizerBase, request: StampRequest, answer: str | None, hp: StampHyperParams
) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Token ids of each forget sequence and the [first, end) window of its key positions (for
    key position "answer": the prompt alone, keyed at its last token, off the v* prompts)."""
    if hp.key_position == "answer":
        if not answer:
            raise ValueError("key_position 'answer' needs a refusal answer")
        pairs = [answer_window(tokenizer, p, answer, hp.answer_eos) for p in request.prompts]
        fitted = set(vstar_indices(len(pairs), hp.vstar_prompts))
        pairs = [(ids, window) if i in fitted else (ids[: window[0] + 1], (window[0], window[0] + 1))
                 for i, (ids, window) in enumerate(pairs)]
        return [ids for ids, _ in pairs], [window for _, window in pairs]
    sequences = _tokenize(tokenizer, request.prompts, hp.key_tokens)
    if hp.key_position == "subject":
        ends = subject_ends(tokenizer, request.prompts, request.subject)
        for prompt, end in zip(request.prompts, ends):
            if end < hp.key_tokens:
                raise ValueError(f"key_tokens={hp.key_tokens} reaches before the start of {prompt!r}: the subject "
                                 f"{request.subject!r} ends at its token {end}")
    else:
        ends = [len(seq) for seq in sequences]
    return sequences, [(end - hp.key_tokens, end) for end in ends]


def _padded(
    tokenizer: PreTrainedTokenizerBase, sequences: Sequence[Sequence[int]], device: torch.device
) -> tuple[dict[str, Tensor], list[int]]:
    """Model inputs for a batch padded on the tokenizer's side, with explicit position ids so
    left padding gives the same activations as no padding; returns each row's start offset."""
    left = getattr(tokenizer, "padding_side", "right") == "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = pad_batch(sequences, pad_id, left=left)
    mask = pad_batch([[1] * len(s) for s in sequences], 0, left=left)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    width = ids.shape[1]
    offsets = [width - len(s) if left else 0 for s in sequences]
    inputs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
    return {k: v.to(device) for k, v in inputs.items()}, offsets


def _site_module(model: nn.Module, layer: int, site: str) -> tuple[nn.Module, bool]:
    """(module, read its input?) for a site: 'key' = down-proj input, 'mlp_out' = its output,
    'residual' = the decoder layer output."""
    if site == "residual":
        return get_module(model, layer_path(model, layer)), False
    return get_module(model, down_proj_path(model, layer)), site == "key"


def _iter_activations(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    sites: Sequence[tuple[int, str]],
    key_tokens: int | None,
    batch_size: int,
    windows: Sequence[tuple[int, int]] | None = None,
    sequences: Sequence[Sequence[int]] | None = None,
    replay: tuple[int, Sequence[object]] | None = None,
    record: tuple[int, list[object]] | None = None,
) -> Iterator[dict[tuple[int, str], Tensor]]:
    """Per batch, the float64 activations (dim, n_batch) at each (layer, site): at the last
    `key_tokens` prompt tokens, or inside each sequence's [first, end) window when `windows`
    is given, or at every real token if `key_tokens` is None. `sequences` (token ids) replace
    the tokenised prompts when given. `replay=(layer, outputs)` skips the layers up to `layer`,
    which return `outputs[batch]` instead; `record=(layer, outputs)` appends what `layer`
    returns on each batch to `outputs` (the same prompts, sites and batches make them replayable)."""
    sites = list(dict.fromkeys(sites))
    if sequences is None:
        sequences = _tokenize(tokenizer, prompts, key_tokens or 1)
    device = _device(model)
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        inputs, offsets = _padded(tokenizer, chunk, device)
        rows, cols = [], []
        for row, (offset, seq) in enumerate(zip(offsets, chunk)):
            if windows is not None:
                first, end = windows[start + row]
            else:
                end = len(seq)
                first = end - key_tokens if key_tokens else 0
            rows += [row] * (end - first)
            cols += range(offset + first, offset + end)
        index = (torch.tensor(rows, device=device), torch.tensor(cols, device=device))
        captured: dict[tuple[int, str], Tensor] = {}

        def grab(site_key: tuple[int, str], from_input: bool):
            def hook(module, args, output=None):
                act = args[0] if from_input else (output[0] if isinstance(output, tuple) else output)
                captured[site_key] = act[index].to(_F64).T
                if len(captured) == len(sites):
                    raise StopForward  # later layers are not needed: skip them

            return hook

        pre, post = [], []
        for site_key in sites:
            module, from_input = _site_module(model, *site_key)
            (pre if from_input else post).append((module, grab(site_key, from_input)))
        if record is not None:
            post.insert(0, (get_module(model, layer_path(model, record[0])), lambda m, a, output: record[1].append(output)))
        skipped = contextlib.nullcontext() if replay is None else \
            start_above_layer(model, replay[0], lambda out=replay[1][start // batch_size]: out)
        try:
            with torch.no_grad(), add_hooks(pre, post), skipped:
                model(**inputs, use_cache=False)
        except StopForward:
            pass
        missing = set(sites) - set(captured)
        if missing:
            raise RuntimeError(f"the forward pass never reached {sorted(missing)}")
        yield captured


def capture(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    layers: Sequence[int],
    site: str = "key",
    key_tokens: int | None = 1,
    batch_size: int = 32,
) -> dict[int, Tensor]:
    """Activations (dim, n) in float64 per layer at `site` ("key" = down-proj input, "mlp_out" =
    down-proj output, "residual" = layer output), at the last `key_tokens` prompt tokens of
    each prompt (padding-aware), or at every token if `key_tokens` is None."""
    if not prompts:
        raise ValueError("no prompts to capture activations from")
    parts: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    for batch in _iter_activations(model, tokenizer, prompts, [(l, site) for l in layers], key_tokens, batch_size):
        for layer in layers:
            parts[layer].append(batch[(layer, site)])
    return {layer: torch.cat(chunks, dim=1) for layer, chunks in parts.items()}


def _covariances(model, tokenizer, texts: Sequence[str], layers: Sequence[int], batch_size: int) -> dict[int, Tensor]:
    """Per layer, the second moment `E[k k^T]` of the down-proj inputs over every token of
    `texts`: a (d_in, d_in) summary of any number of keys, every layer from one forward pass,
    streamed batch by batch."""
    totals: dict[int, Tensor] = {}
    count = 0
    for batch in _iter_activations(model, tokenizer, texts, [(l, "key") for l in layers], None, batch_size):
        for layer in layers:
            K = batch[(layer, "key")]
            totals[layer] = K @ K.T if layer not in totals else totals[layer] + K @ K.T
        count += batch[(layers[0], "key")].shape[1]
    return {layer: total / count for layer, total in totals.items()}


# ----------------------------------------------------------------------------- layer selection


def cosine_separation(a: Tensor, b: Tensor) -> float:
    """`1 - cos(a, b)` of two mean activations; 0 when either is zero (no signal to separate)."""
    a, b = a.to(_F64).flatten(), b.to(_F64).flatten()
    norms = torch.linalg.norm(a) * torch.linalg.norm(b)
    return 0.0 if norms == 0 else float(1 - (a @ b) / norms)


def layer_separation(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    forget_prompts: Sequence[str],
    refusal_prompts: Sequence[str],
    layers: Sequence[int] | None = None,
    site: str = "residual",
    key_tokens: int = 1,
    batch_size: int = 32,
    cache: StampCache | None = None,
) -> dict[int, float]:
    """Cosine separation between the mean forget and mean refusal activation at each layer."""
    _choice("selection_site", site, SELECTION_SITES)
    if not forget_prompts or not refusal_prompts:
        raise ValueError("layer selection needs forget prompts and refusal prompts")
    layers = [resolve_layer(model, l) for l in (range(num_layers(model)) if layers is None else layers)]
    forget = capture(model, tokenizer, forget_prompts, layers, site, key_tokens, batch_size)

    def refusal_means() -> dict[int, Tensor]:
        acts = capture(model, tokenizer, refusal_prompts, layers, site, key_tokens, batch_size)
        return {l: a.mean(dim=1) for l, a in acts.items()}

    if cache is None:
        refusal = refusal_means()
    else:
        key = ("refusal_mean", cache.model_key(model), _fingerprint(refusal_prompts), site, key_tokens, tuple(layers))
        refusal = cache.get(key, refusal_means)
    return {l: cosine_separation(forget[l].mean(dim=1), refusal[l]) for l in layers}


def select_layer(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    forget_prompts: Sequence[str],
    refusal_prompts: Sequence[str],
    **options: Any,
) -> int:
    """The layer with the largest forget/refusal cosine separation (RePAIR's single-layer rule);
    `options` (layers, site, key_tokens, batch_size, cache) are `layer_separation`'s."""
    scores = layer_separation(model, tokenizer, forget_prompts, refusal_prompts, **options)
    return max(scores, key=scores.__getitem__)


def resolve_layer(model: nn.Module, layer: int) -> int:
    """Validate `layer` against the model and return it as a non-negative index."""
    return int(layer_path(model, layer).rsplit(".", 1)[1])


# ----------------------------------------------------------------------------- targets


def refusal_targets(values: Tensor, refusal: Tensor, subspace_dim: int) -> Tensor:
    """Target outputs `v_ref + U U^T (v - v_ref)`: keep the part of each forget output that lies
    along the top `subspace_dim` principal directions U of the refusal outputs, take the rest
    from their mean `v_ref` (subspace_dim = 0: every target is `v_ref`)."""
    mean = refusal.mean(dim=1, keepdim=True)
    if subspace_dim == 0:
        return mean.expand_as(values).clone()
    U, S, _ = torch.linalg.svd(refusal - mean, full_matrices=False)
    present = int((S > 1e-10 * S[0]).sum()) if S[0] > 0 else 0  # directions the refusals vary along
    U = U[:, : min(subspace_dim, present)]
    return mean + U @ (U.T @ (values - mean))


def _retain_overlap(retain_prompts: Sequence[str], reqs: Sequence[StampRequest]) -> list[int] | None:
    """Indices of the retain prompts that are also being forgotten: a forget prompt, or any prompt
    naming a request's subject as whole words ("Ann Lee" is not named in "Ann Leeson"; None: no
    overlap)."""
    forget = {p for r in reqs for p in r.prompts}
    named = [re.compile(rf"(?<!\w){re.escape(r.subject)}(?!\w)") for r in reqs if r.subject]
    hits = [i for i, p in enumerate(retain_prompts) if p in forget or any(n.search(p) for n in named)]
    return hits or None


def _retain_keys(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    ctx: StampContext,
    hp: StampHyperParams,
    indices: Sequence[int],
    layers: Sequence[int],
) -> Iterator[tuple[dict[int, Tensor], list[int]]]:
    """Batch by batch, per layer, the keys of the retain prompts at `indices` over their key
    windows, and the columns that are each window's first key (the last prompt token)."""
    sequences, windows = retain_key_windows(tokenizer, ctx, hp, indices)
    widths = [end - first for first, end in windows] if windows is not None else [hp.key_tokens] * len(indices)
    held = [ctx.retain_prompts[i] for i in indices]
    batches = _iter_activations(model, tokenizer, held, [(layer, "key") for layer in layers], hp.key_tokens,
                                hp.batch_size, windows, sequences)
    for start, batch in zip(range(0, len(held), hp.batch_size), batches):
        chunk = widths[start : start + hp.batch_size]
        yield {layer: batch[(layer, "key")] for layer in layers}, [sum(chunk[:i]) for i in range(len(chunk))]


def _window_moments(
    batches: Iterable[tuple[dict[int, Tensor], list[int]]], prompt_only: bool
) -> dict[int, dict[str, Tensor]]:
    """Per layer, the key moment of `_retain_keys`' batches over the key windows ("window") and,
    with `prompt_only`, at the last prompt tokens alone ("prompt")."""
    moments: dict[int, dict[str, Tensor]] = {}
    for keys, firsts in batches:
        for layer, K in keys.items():
            parts = {"window": K, **({"prompt": K[:, firsts]} if prompt_only else {})}
            for name, part in parts.items():
                so_far = moments.setdefault(layer, {})
                so_far[name] = so_far[name] + part @ part.T if name in so_far else part @ part.T
    return moments


@dataclass
class RetainMoment:
    """The retain buffer's key moment as an edit holds it (`retain_moments`).

    `full` holds every buffer key, so it is the same for every request and the hold built on it
    is inverted once per state; `released` (d_in, m) are the keys of the forget prompts that are
    in the buffer, scaled so that the moment held is `full - released released^T` (a key cannot
    be both held and forgotten). The ridge solve lets go of them in its n x n system."""

    full: Tensor
    released: Tensor | None

    def held(self) -> Tensor:
        return self.full if self.released is None else self.full - self.released @ self.released.T


def retain_moments(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    reqs: Sequence[StampRequest],
    layers: Sequence[int],
    hp: StampHyperParams,
    ctx: StampContext,
) -> dict[int, RetainMoment]:
    """Per layer, the retain buffer's key moment as an edit holds it: its keys (at the last prompt
    token `retain_prompt_boost` times) and those of any forget prompt in the buffer, released.

    Everything is read before any layer is edited: the buffer's moment is a cached statistic of
    the model before the edit, and the edit of a lower layer moves the forget prompts' keys at
    the layers above (that is its purpose). Read between layer edits, the keys released would
    not be those the moment holds, and the hold could come out indefinite."""
    cache, boost = ctx.cache, hp.retain_prompt_boost != 1.0 and _holds_answers(hp, ctx)
    retain_id = (_fingerprint([*ctx.retain_prompts, *(ctx.retain_answers or ())]), hp.key_tokens, _holds_answers(hp, ctx))
    everything = range(len(ctx.retain_prompts))
    moments = cache.get_layers(
        {layer: ("retain_moments", cache.model_key(model), layer, *retain_id, boost) for layer in layers},
        lambda todo: _window_moments(_retain_keys(model, tokenizer, ctx, hp, everything, todo), boost),
    )
    released: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    overlap = _retain_overlap(ctx.retain_prompts, reqs)
    with cache.reading():  # where the moment was read: the keys let go of are those it holds
        named = list(_retain_keys(model, tokenizer, ctx, hp, overlap, layers)) if overlap else []
    for keys, firsts in named:
        for layer, K in keys.items():  # each key scaled by the root of the weight it is held with
            scale = torch.ones(K.shape[1], dtype=_F64, device=K.device)
            scale[firsts] = hp.retain_prompt_boost ** 0.5 if boost else 1.0
            released[layer].append(K.to(_F64) * scale)
    held = {}
    for layer in layers:
        full = moments[layer]["window"] + (hp.retain_prompt_boost - 1.0) * moments[layer]["prompt"] if boost \
            else moments[layer]["window"]
        held[layer] = RetainMoment(full, torch.cat(released[layer], dim=1) if released[layer] else None)
    return held


def retain_key_windows(
    tokenizer: PreTrainedTokenizerBase, ctx: StampContext, hp: StampHyperParams, indices: Sequence[int]
) -> tuple[list[list[int]] | None, list[tuple[int, int]] | None]:
    """Token ids and key windows of the retain prompts at `indices`: with key position "answer"
    and retain answers, the last prompt token and every answer token; otherwise (None, None),
    the last `key_tokens` prompt tokens."""
    if not _holds_answers(hp, ctx):
        return None, None
    pairs = [answer_window(tokenizer, ctx.retain_prompts[i], ctx.retain_answers[i], hp.answer_eos) for i in indices]
    return [ids for ids, _ in pairs], [window for _, window in pairs]


def _holds_answers(hp: StampHyperParams, ctx: StampContext) -> bool:
    return hp.key_position == "answer" and ctx.retain_answers is not None


def _vstar_shift(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    layer: int,
    prompts: Sequence[str],
    values: Tensor,
    answer: str,
    hp: StampHyperParams,
    windows: Sequence[tuple[int, int]],
    init: Tensor | None = None,
) -> tuple[Tensor, float]:
    """ROME/MEMIT's v*: additive shifts of the down-proj output, one per slot of the key window
    (shared by all `prompts`), optimised with Adam from zero (or `init`, when it has their
    shape) to make `answer` likely; returns (shifts (d_out, window), last NLL). Each slot's
    norm is clamped separately.

    `values` (d_out, n) are the original outputs at the request's key positions: they set the
    Adam step scale (their RMS entry) and the norm clamp (their mean norm).

    Where the down-projection's output is added to the residual stream unchanged (Llama, Qwen2,
    Mistral, Phi-3, GPT-2), the layers up to `layer` run once: each step replays their output
    with the shift added and computes only the layers above (`start_above_layer`).
    """
    keep, windows = vstar_indices(len(prompts), hp.vstar_prompts), list(windows)
    prompts, windows = [prompts[i] for i in keep], [windows[i] for i in keep]
    pairs = [encode_pair(tokenizer, p, answer, add_eos=hp.answer_eos) for p in prompts]
    if not any(t != -100 for _, labels in pairs for t in labels):
        raise ValueError(f"the refusal answer {answer!r} encodes to no tokens")
    device = _device(model)
    batches = []
    for start in range(0, len(pairs), hp.batch_size):
        chunk = pairs[start : start + hp.batch_size]
        inputs, offsets = _padded(tokenizer, [ids for ids, _ in chunk], device)
        labels = torch.full_like(inputs["input_ids"], -100)
        slot = torch.zeros(labels.shape, dtype=torch.long, device=device)  # 0: no shift, j+1: shift j
        for row, ((ids, lab), offset) in enumerate(zip(chunk, offsets)):
            labels[row, offset : offset + len(ids)] = torch.tensor(lab, device=device)
            first, end = windows[start + row]
            slot[row, offset + first : offset + end] = torch.arange(1, end - first + 1, device=device)
        batches.append((inputs, labels, slot))
    n_answer = sum(int((labels != -100).sum()) for _, labels, _ in batches)
    max_norm = hp.clamp_norm_factor * float(values.norm(dim=0).mean())
    rms = float(values.pow(2).mean().sqrt())
    width = {end - first for first, end in windows}
    if len(width) != 1:
        raise ValueError(f"key windows of one request must have one length, got {sorted(width)}")
    shape = (values.shape[0], width.pop())
    initial = init if init is not None and tuple(init.shape) == shape else torch.zeros(shape)
    shift = initial.to(device=device, dtype=torch.float32).clone().requires_grad_(True)
    optimiser = torch.optim.Adam([shift], lr=hp.vstar_lr * max(rms, 1e-12))
    loss_value = float("inf")
    module = get_module(model, down_proj_path(model, layer))
    was_training = model.training
    model.eval()
    try:
        replayed = [layer_output(model, layer, **inputs) for inputs, _, _ in batches] \
            if mlp_output_adds_to_layer_output(model, layer) else None
        for _ in range(hp.vstar_steps):
            optimiser.zero_grad()
            total = 0.0
            for b, (inputs, labels, slot) in enumerate(batches):

                def shifted(output, slot=slot):
                    padded = torch.cat([torch.zeros_like(shift[:, :1]), shift], dim=1)
                    return output + padded.T[slot].to(output.dtype)

                if replayed is None:
                    running = add_hooks(module_forward_hooks=[(module, lambda m, a, output: shifted(output))])
                else:
                    running = start_above_layer(model, layer, lambda out=replayed[b], shifted=shifted:
                                                with_layer_hidden(out, shifted(layer_hidden(out))))
                with running:
                    logits, scored = answer_logits(model, labels, **inputs)
                logits, targets = logits[:, :-1].float(), scored[:, 1:]
                nll = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
                ) / n_answer
                total += float(nll.detach())
                if len(batches) == 1 and total < hp.vstar_stop_loss:
                    break  # the one batch already meets the stop loss: its gradient would go unused
                (grad,) = torch.autograd.grad(nll, [shift])
                shift.grad = grad if shift.grad is None else shift.grad + grad
            loss_value = total
            if loss_value < hp.vstar_stop_loss:
                break
            optimiser.step()
            with torch.no_grad():
                norms = shift.norm(dim=0, keepdim=True)
                shift.mul_(torch.clamp(max_norm / norms.clamp(min=1e-30), max=1.0))
    finally:
        model.train(was_training)
    return shift.detach().to(_F64), loss_value


# ----------------------------------------------------------------------------- weights


def add_delta(module: nn.Module, delta: Tensor) -> None:
    """Add a (d_out, d_in) delta to a down-projection weight in its own layout and dtype
    (GPT-2 Conv1D is stored transposed); the sum is formed in float64, then rounded once."""
    with torch.no_grad():
        weight = down_proj_weight(module)
        if tuple(delta.shape) != tuple(weight.shape):
            raise ValueError(f"delta shape {tuple(delta.shape)} does not match weight {tuple(weight.shape)}")
        weight.copy_((weight.to(_F64) + delta.to(device=weight.device, dtype=_F64)).to(weight.dtype))


def restore_weights(model: nn.Module, weights_copy: dict[str, Tensor]) -> None:
    """Copy the saved original parameters back (bitwise undo of an edit)."""
    params = dict(model.named_parameters())
    missing = sorted(set(weights_copy) - set(params))
    if missing:
        raise ValueError(f"model has no parameters {missing}")
    with torch.no_grad():
        for name, original in weights_copy.items():
            params[name].copy_(original)


# ----------------------------------------------------------------------------- the edit


def _as_requests(requests: Sequence[StampRequest] | Sequence[str]) -> list[StampRequest]:
    if isinstance(requests, str):
        raise ValueError("requests must be a list of prompts or StampRequest objects, not one string")
    if not requests:
        raise ValueError("no forget requests: pass at least one prompt or StampRequest")
    if all(isinstance(r, str) for r in requests):
        return [StampRequest(tuple(requests))]
    if not all(isinstance(r, StampRequest) for r in requests):
        raise ValueError("requests must be all prompt strings or all StampRequest objects")
    return list(requests)


def _check_context(hp: StampHyperParams, requests: list[StampRequest], ctx: StampContext) -> None:
    if hp.target == "vstar":
        missing = [r for r in requests if (r.answer or ctx.refusal_answer) is None]
        if missing:
            raise ValueError("the vstar target needs a refusal answer: set context.refusal_answer or request.answer")
    elif any(r.answer is not None for r in requests):
        raise ValueError(f"request answers are only used by the vstar target, not {hp.target!r}")
    if (hp.target != "vstar" or hp.layers is None) and not ctx.refusal_prompts:
        raise ValueError("refusal prompts are needed for refusal targets and for layer selection")
    if ctx.retain_answers is not None and len(ctx.retain_answers) != len(ctx.retain_prompts):
        raise ValueError(f"{len(ctx.retain_answers)} retain answers for {len(ctx.retain_prompts)} retain prompts")
    if hp.retain_weight and not ctx.retain_prompts:
        raise ValueError("retain_weight needs retain prompts: their keys are the outputs to hold")
    if ctx.prior_moments and hp.solver != "ridge":
        raise ValueError("prior_moments (earlier edits' keys) are used by the ridge solver only")
    if hp.solver == "lowrank" and not (ctx.covariance_texts or ctx.retain_prompts):
        raise ValueError("the lowrank solver needs retain prompts or covariance texts for its covariance")


def stamp_edit(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    requests: Sequence[StampRequest] | Sequence[str],
    hparams: StampHyperParams,
    context: StampContext | None = None,
) -> StampEdit:
    """Edit `model` in place with STAMP and report what was done (see the module docstring).

    `requests` is a list of `StampRequest`, or a list of formatted forget prompts taken as one
    request. The returned `weights_copy` maps HF parameter names to clones of the originals.
    """
    hp, ctx = hparams, context or StampContext()
    reqs = _as_requests(requests)
    _check_context(hp, reqs, ctx)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    forget_prompts = [p for r in reqs for p in r.prompts]
    scores = None
    if hp.layers is None:
        candidates = hp.layer_candidates
        if candidates is None:
            n = num_layers(model)
            candidates = list(range(min(hp.min_layer, n - 1), n))
        scores = layer_separation(
            model, tokenizer, forget_prompts, ctx.refusal_prompts, candidates,
            hp.selection_site, hp.key_tokens, hp.batch_size, ctx.cache,
        )
        best = max(scores, key=scores.__getitem__)
        layers = [l for l in sorted(candidates) if best - hp.window < l <= best]
        timings["select"] = time.perf_counter() - clock
    else:
        layers = sorted(resolve_layer(model, l) for l in hp.layers)
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers {hp.layers} name the same layer twice")
    result = StampEdit(weights_copy={}, layers=layers, edits=[], layer_scores=scores, timings=timings)
    clock = time.perf_counter()
    stats = _reference_statistics(model, tokenizer, reqs, layers, hp, ctx)
    _tick(timings, "stats", clock)
    # The keys pass of a layer records what the layer below it returns; the edit changes only
    # the layer itself, so the next layer's keys pass replays that output instead of recomputing
    # every layer beneath it.
    replay: tuple[int, list[object]] | None = None
    try:
        for step, layer in enumerate(layers):
            share = 1.0 / (len(layers) - step)
            record = (layer - 1, []) if layer >= 1 else None
            result.edits.append(_edit_layer(
                model, tokenizer, reqs, forget_prompts, layer, share, hp, ctx, stats[layer], result, replay, record))
            replay = record
    except BaseException:
        restore_weights(model, result.weights_copy)  # never leave a half-applied multi-layer edit
        raise
    return result


@dataclass
class _LayerStats:
    """What the edit of one layer reads about the model before the edit (None: not needed)."""

    retain: RetainMoment | None  # the retain moment held (`retain_moments`)
    covariance: Tensor | None  # E[k k^T] over the covariance texts (ridge, lowrank)
    covariance_key: tuple | None  # names it in the cache, for what is derived from it
    refusal: Tensor | None  # the refusal prompts' outputs (refusal targets)


def _reference_statistics(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    reqs: list[StampRequest],
    layers: Sequence[int],
    hp: StampHyperParams,
    ctx: StampContext,
) -> dict[int, _LayerStats]:
    """Every statistic the edit of `layers` reads, all of the model before the edit (MEMIT's
    convention), each read for every layer in one pass and cached. Read lazily, layer by layer, a
    layer's statistics would come from a model whose lower layers this edit (or the first edit
    that needed them) had already changed."""
    cache, mid = ctx.cache, ctx.cache.model_key(model)
    cov_texts = ctx.covariance_texts if ctx.covariance_texts is not None else ctx.retain_prompts
    cov_keys = {layer: ("covariance", mid, layer, _fingerprint(cov_texts or ())) for layer in layers}
    covariances = {}
    if cov_texts and hp.solver in ("ridge", "lowrank"):
        covariances = cache.get_layers(cov_keys, lambda todo: _covariances(model, tokenizer, cov_texts, todo,
                                                                           hp.batch_size))
    refusal = {}
    if hp.target != "vstar":
        refusal = cache.get_layers(
            {layer: ("refusal_values", mid, layer, _fingerprint(ctx.refusal_prompts), hp.key_tokens) for layer in layers},
            lambda todo: capture(model, tokenizer, ctx.refusal_prompts, todo, "mlp_out", hp.key_tokens, hp.batch_size))
    retain = retain_moments(model, tokenizer, reqs, layers, hp, ctx) if ctx.retain_prompts else {}
    return {layer: _LayerStats(retain.get(layer), covariances.get(layer), cov_keys[layer] if covariances else None,
                               refusal.get(layer)) for layer in layers}


def _tick(timings: dict[str, float], phase: str, since: float) -> float:
    now = time.perf_counter()
    timings[phase] = timings.get(phase, 0.0) + now - since
    return now


def _edit_layer(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    reqs: list[StampRequest],
    forget_prompts: list[str],
    layer: int,
    share: float,
    hp: StampHyperParams,
    ctx: StampContext,
    stats: _LayerStats,
    result: StampEdit,
    replay: tuple[int, list[object]] | None = None,
    record: tuple[int, list[object]] | None = None,
) -> LayerEdit:
    """Edit one layer; its keys pass may replay and record a lower layer's outputs (`stamp_edit`)."""
    timings, cache, retain = result.timings, ctx.cache, stats.retain
    clock = time.perf_counter()
    path = down_proj_path(model, layer)
    module = get_module(model, path)
    W = down_proj_weight(module).detach().to(_F64, copy=True)

    per_request = [key_windows(tokenizer, r, r.answer or ctx.refusal_answer, hp) for r in reqs]
    sequences = [seq for seqs, _ in per_request for seq in seqs]
    windows = [w for _, wins in per_request for w in wins]
    keys, outputs = [], []
    for batch in _iter_activations(
        model, tokenizer, forget_prompts, [(layer, "key"), (layer, "mlp_out")], hp.key_tokens, hp.batch_size,
        windows, sequences, replay, record,
    ):
        keys.append(batch[(layer, "key")])
        outputs.append(batch[(layer, "mlp_out")])
    K_f, V_out = torch.cat(keys, dim=1), torch.cat(outputs, dim=1)
    clock = _tick(timings, "keys", clock)

    # The retain buffer enters as its key moment sum_k k k^T (d_in x d_in), whatever its size.
    regulariser: Tensor | RidgeHold | LowRankCovariance | None = None  # None: plain ridge (C = I)
    released = None  # keys the ridge hold lets go of for this edit (forget prompts in the retain buffer)
    C = stats.covariance
    if hp.solver == "lowrank" and C is not None:
        rank = min(hp.rank, W.shape[1])
        regulariser = cache.get(
            stats.covariance_key + ("lowrank", rank, hp.cov_floor),
            lambda: LowRankCovariance.from_second_moment(C, rank, floor=hp.cov_floor),
        )
    elif hp.solver == "ridge":

        def floored() -> Tensor:  # C + floor I
            return C + hp.cov_floor * float(C.trace()) / C.shape[0] * torch.eye(C.shape[0], dtype=_F64, device=C.device)

        # the hold: lam C + retain_weight K_r K_r^T + sum K_p K_p^T (earlier edits' keys); C = I without
        # statistics. It holds the whole retain buffer, so it is the same for every request in one state
        # (unless it is stiffened: then it lets go of the forget prompts before its directions are found).
        if C is not None:
            hold = hp.lam * cache.get(stats.covariance_key + ("floored", hp.cov_floor), floored).to(W.device)
        else:
            hold = hp.lam * torch.eye(W.shape[1], dtype=_F64, device=W.device)
        if hp.retain_weight and retain is not None:
            hold = hold + hp.retain_weight * retain.full.to(W.device)
            if retain.released is not None:
                released = hp.retain_weight**0.5 * retain.released.to(W.device)
        if layer in ctx.prior_moments:
            hold = hold + ctx.prior_moments[layer].to(device=W.device, dtype=_F64)
        protect = min(hp.protected_rank, W.shape[1])
        # few keys: invert the hold once per state, solve by push-through (released keys join the keys)
        pushed = K_f.shape[1] + (0 if released is None or protect else released.shape[1]) <= W.shape[1] // 2
        if released is not None and (protect or not pushed):  # the hold lets go of them itself (stiffened:
            hold, released = hold - released @ released.T, None  # before its directions are found)

        def stiff() -> Tensor:
            return stiffen_top_directions(hold, protect, hp.protected_weight) if protect else hold

        if pushed:
            tag = (_content_tag(hold), protect, hp.protected_weight if protect else None)
            regulariser = cache.recent(("ridge_hold", layer), tag, lambda: RidgeHold.of(stiff()))
        else:
            regulariser = stiff()
    clock = _tick(timings, "stats", clock)

    if hp.target == "vstar":
        shifts, start = [], 0
        inits = ctx.vstar_init.get(layer) or [None] * len(reqs)
        result.vstar_shifts[layer] = []
        for req, (_, req_windows), init in zip(reqs, per_request, inits):
            n_keys = sum(end - first for first, end in req_windows)
            answer = req.answer or ctx.refusal_answer
            delta, loss = _vstar_shift(
                model, tokenizer, layer, req.prompts, V_out[:, start : start + n_keys], answer, hp, req_windows, init
            )
            start += n_keys
            result.vstar_losses.append(loss)
            result.vstar_shifts[layer].append(delta)
            shifts += [delta[:, : end - first] for first, end in req_windows]  # slot 0: the last prompt token
        shift = torch.cat(shifts, dim=1)
    else:
        subspace = hp.subspace_dim if hp.target == "refusal_subspace" else 0
        shift = refusal_targets(V_out, stats.refusal, subspace) - V_out
    residual = share * shift.to(W.device)
    V_f = W @ K_f + residual
    clock = _tick(timings, "targets", clock)

    if hp.solver == "exact":
        # a retain direction weaker than the activations' rounding is no key to hold
        rtol = 10 * torch.finfo(module.weight.dtype).eps
        dW = solve_exact(W, K_f, V_f, None if retain is None else moment_factor(retain.held(), rtol))
    elif isinstance(regulariser, LowRankCovariance):
        dW = solve_lowrank(W, K_f, V_f, regulariser, hp.lam)
    elif isinstance(regulariser, RidgeHold):
        dW = ridge_held_update(K_f, residual, regulariser, released)
    elif regulariser is None:  # lowrank without covariance statistics
        dW = solve_ridge(W, K_f, V_f, None, hp.lam)
    else:  # many keys: one factorisation of hold + K K^T is cheaper than the push-through
        dW = solve_ridge(W, K_f, V_f, regulariser, 1.0)
    clock = _tick(timings, "solve", clock)

    param_name = f"{path}.weight"
    if param_name not in result.weights_copy:
        result.weights_copy[param_name] = module.weight.detach().clone()
    add_delta(module, dW)
    _tick(timings, "apply", clock)

    W_new = down_proj_weight(module).detach().to(_F64)
    miss = torch.linalg.norm(W_new @ K_f - V_f) / torch.linalg.norm(W @ K_f - V_f).clamp(min=1e-30)
    drift = None
    if retain is not None:  # ||dW K_r|| / ||W K_r||, from the moment: ||A K_r||^2 = tr(A K_r K_r^T A^T)
        R = retain.held().to(W.device)
        drift = float(((dW @ R) * dW).sum().clamp(min=0).sqrt() / ((W @ R) * W).sum().clamp(min=1e-60).sqrt())
    return LayerEdit(
        layer=layer,
        param_name=param_name,
        keys=K_f,
        targets=V_f,
        delta=dW,
        target_miss=float(miss),
        delta_ratio=float(torch.linalg.norm(dW) / torch.linalg.norm(W)),
        retain_drift=drift,
    )


def apply_stamp(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    requests: Sequence[StampRequest] | Sequence[str],
    hparams: StampHyperParams,
    context: StampContext | None = None,
) -> tuple[PreTrainedModel, dict[str, Tensor]]:
    """EasyEdit-style entry point: edit `model` in place, return `(model, weights_copy)`;
    `restore_weights(model, weights_copy)` undoes the edit bitwise."""
    edit = stamp_edit(model, tokenizer, requests, hparams, context)
    return model, edit.weights_copy
