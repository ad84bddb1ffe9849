"""Known-answer tests of the explanation pipeline on hand-built traces (no model needed)."""

import math

import pytest
import torch

from mllm_explain.adapters.base import ModelAdapter, Trace
from mllm_explain.errors import UserError
from mllm_explain.methods import get_method, list_methods, options_for, parse_option
from mllm_explain.methods.base import remove_interference
from mllm_explain.views import View

D, V = 8, 24
E = torch.eye(D)


class FakeModel(ModelAdapter):
    """Just what token-activation methods read from a model: the unembedding matrix, through the
    adapter's own `unembed_rows` and `logits` (uncapped)."""

    logit_softcap = None

    def __init__(self, unembedding: torch.Tensor) -> None:
        self._unembedding = unembedding

    @property
    def unembedding(self) -> torch.Tensor:
        return self._unembedding


def _trace(vision: list[torch.Tensor], hidden: dict[int, torch.Tensor], ids: list[int]) -> Trace:
    """Positions: 0 text, 1..4 vision (2x2 grid), 5 separator, 6-7 prompt, 8 answer."""
    states = torch.zeros(9, D)
    states[1:5] = torch.stack(vision)
    for position, value in hidden.items():
        states[position] = value
    return Trace(scale=1.0, input_ids=torch.tensor(ids), hidden=states, views=[View(torch.arange(1, 5), (2, 2))],
                 prompt_positions=torch.tensor([6, 7]), answer_positions=torch.tensor([8]))


def _unembedding(rows: dict[int, torch.Tensor]) -> torch.Tensor:
    W = torch.randn(V, D, generator=torch.Generator().manual_seed(0)) * 0.1
    W[:, :3] = 0  # other tokens stay out of the planted directions
    for token, row in rows.items():
        W[token] = row
    return W


A, N, T = 1, 2, 3  # context word, neutral prompt word, answer token
IDS = [0, 9, 9, 9, 9, 0, A, N, T]


def test_eci_removes_an_interference_map_planted_by_a_context_token():
    # The answer token's map = its own evidence (cell 0) + 0.5 x context token A's map (cell 3).
    W = _unembedding({A: E[0], N: E[1], T: E[2] + 0.5 * E[0]})
    trace = _trace([E[2], torch.zeros(D), torch.zeros(D), E[0]], {6: E[2], 7: E[3]}, IDS)
    lens = get_method("logit_lens").attribute(FakeModel(W), [trace]).maps[0]
    eci = get_method("tam", filter=False, normalise="map").attribute(FakeModel(W), [trace]).maps[0]
    assert torch.allclose(lens, torch.tensor([[1.0, 0.0], [0.0, 0.5]]))
    assert torch.allclose(eci, torch.tensor([[1.0, 0.0], [0.0, 0.0]]), atol=1e-6)


def test_arc_keeps_evidence_shared_with_a_coherent_context_token_that_eci_removes():
    # "red star": A's map covers the same cell as the answer's; both were predicted from the same
    # state (identical top-k), so ARC sees them as coherent (rho = 1) and leaves the map alone.
    u = torch.randn(D, generator=torch.Generator().manual_seed(1))
    u[:3] = 0
    W = _unembedding({A: E[0], N: E[1], T: E[2]})
    trace = _trace([E[2] + E[0], torch.zeros(D), torch.zeros(D), 0.3 * E[1]], {5: u, 6: E[2], 7: u}, IDS)
    options = dict(filter=False, normalise="map", arc_k=10)
    eci = get_method("tam", **options).attribute(FakeModel(W), [trace]).maps[0]
    arc = get_method("arc", **options).attribute(FakeModel(W), [trace]).maps[0]
    assert eci[0, 0] < 1e-6  # plain ECI subtracted the shared evidence
    assert torch.allclose(arc, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_no_context_means_no_subtraction():
    maps = torch.rand(3, 5)
    assert torch.equal(remove_interference(maps, torch.rand(4, 5), torch.zeros(3, 4)), maps)


def test_msea_over_identical_scale_maps_returns_that_map():
    W = _unembedding({A: E[0], N: E[1], T: E[2] + 0.5 * E[0]})
    trace = _trace([E[2], 0.2 * E[2], torch.zeros(D), E[0]], {6: E[2], 7: E[3]}, IDS)
    single = get_method("tam").attribute(FakeModel(W), [trace])
    for aggregation in ("mean", "max", "confidence"):
        multi = get_method("msea", aggregation=aggregation).attribute(FakeModel(W), [trace, trace, trace])
        assert torch.allclose(multi.maps, single.maps, atol=1e-6)
        assert torch.allclose(multi.relevance, single.relevance, equal_nan=True)


@pytest.mark.parametrize("method", ["msea", "msea_arc"])
def test_interference_removed_after_aggregation_equals_per_scale_on_identical_scales(method):
    W = _unembedding({A: E[0], N: E[1], T: E[2] + 0.5 * E[0]})
    trace = _trace([E[2], 0.2 * E[2], torch.zeros(D), E[0]], {6: E[2], 7: E[3]}, IDS)
    per_scale = get_method(method, arc_k=10).attribute(FakeModel(W), [trace, trace])
    after = get_method(method, arc_k=10, context_stage="after").attribute(FakeModel(W), [trace, trace])
    assert torch.allclose(after.maps, per_scale.maps, atol=1e-6)
    assert torch.allclose(after.relevance, per_scale.relevance, equal_nan=True)


def test_interference_removed_after_aggregation_uses_every_scale():
    # The second scale sees context word A twice as strongly; the mean of the answer's maps and the
    # mean of A's maps are removed once, leaving only the answer's own cell.
    W = _unembedding({A: E[0], N: E[1], T: E[2] + 0.5 * E[0]})
    first = _trace([E[2], torch.zeros(D), torch.zeros(D), E[0]], {6: E[2], 7: E[3]}, IDS)
    second = _trace([E[2], torch.zeros(D), torch.zeros(D), 2 * E[0]], {6: E[2], 7: E[3]}, IDS)
    options = dict(filter=False, normalise="map", aggregation="mean")
    after = get_method("msea", context_stage="after", **options).attribute(FakeModel(W), [first, second])
    assert torch.allclose(after.maps[0], torch.tensor([[1.0, 0.0], [0.0, 0.0]]), atol=1e-6)
    # its per-view maps are the first trace's own, as the per-scale path gives them
    alone = get_method("msea", context_stage="per_scale", **options).attribute(FakeModel(W), [first])
    assert [m.shape for m in after.view_maps] == [m.shape for m in alone.view_maps]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(after.view_maps, alone.view_maps))


def test_joint_normalisation_puts_map_and_relevance_on_one_scale():
    W = _unembedding({A: E[0], N: E[1], T: E[2] + 0.5 * E[0]})
    trace = _trace([E[2], 0.2 * E[2], torch.zeros(D), E[0]], {6: 3 * E[2], 7: E[3]}, IDS)
    result = get_method("tam", filter=False).attribute(FakeModel(W), [trace])
    relevance = result.relevance[0]
    assert math.isnan(relevance[2])  # the answer token is not its own context
    assert relevance[0] == pytest.approx(1.0)  # A's relevance (3.0) is the joint maximum
    assert result.maps.max() < 1.0


@pytest.mark.parametrize("name", list_methods())
def test_every_method_rejects_unknown_options(name):
    with pytest.raises(UserError, match="bad option"):
        get_method(name, not_an_option=1)


def test_unknown_method_is_a_user_error():
    with pytest.raises(UserError, match="unknown method"):
        get_method("nope")


@pytest.mark.parametrize(("text", "expected"), [
    ("arc_k=20", ("arc_k", 20)),
    ("arc_p=0.8", ("arc_p", 0.8)),
    ("filter=false", ("filter", False)),
    ("aggregation=max", ("aggregation", "max")),
    ("scales=1,0.5", ("scales", (1.0, 0.5))),
])
def test_option_text_is_typed_by_the_option_default(text, expected):
    assert parse_option(text, ["msea_arc"]) == expected


@pytest.mark.parametrize("text", ["arc_k", "arc_k=many", "filter=maybe", "colour=red"])
def test_bad_option_text_is_a_user_error(text):
    with pytest.raises(UserError, match="bad option"):
        parse_option(text, ["msea_arc"])


def test_options_go_only_to_the_methods_that_take_them():
    options = {"arc_k": 5, "scales": (1.0,)}
    assert options_for("attention", options) == {"scales": (1.0,)}
    assert options_for("arc", options) == options


def test_round_pairing_keeps_the_self_score_off_the_previous_words_map():
    # "red star": positions 6 prompt word N, 7 answer "red" (A), 8 answer "star" (T).  Position 7
    # predicts "star" (its state is T's direction); "red"'s map lies on the star's cell.  Read at its
    # own position (the earlier convention) "red" gets star's self score and ECI erases the star;
    # read where it was predicted (position 6, TAM's rounds) it carries no weight.
    W = _unembedding({A: E[0], N: E[1], T: E[2]})
    states = torch.zeros(9, D)
    states[1] = E[2] + E[0]
    states[6], states[7] = E[3], E[2]
    trace = Trace(scale=1.0, input_ids=torch.tensor([0, 9, 9, 9, 9, 0, N, A, T]), hidden=states,
                  views=[View(torch.arange(1, 5), (2, 2))], prompt_positions=torch.tensor([6]),
                  answer_positions=torch.tensor([7, 8]))
    options = dict(filter=False, normalise="map")
    round_ = get_method("tam", **options).attribute(FakeModel(W), [trace]).maps[1]
    position = get_method("tam", eci_pairing="position", **options).attribute(FakeModel(W), [trace]).maps[1]
    assert torch.allclose(round_, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert position.max() < 1e-6


def test_a_method_prefix_wins_over_the_plain_option_and_reaches_no_other_method():
    from mllm_explain.methods import changed_by_plain

    options = dict(parse_option(text, ["tam", "msea"]) for text in ["scales=1,0.5", "msea.scales=1,1.5", "arc_k=20"])
    assert options == {"scales": (1.0, 0.5), "msea.scales": (1.0, 1.5), "arc_k": 20}
    assert options_for("msea", options) == {"scales": (1.0, 1.5), "arc_k": 20}
    assert options_for("tam", options) == {"scales": (1.0, 0.5), "arc_k": 20}
    assert options_for("attention", options) == {"scales": (1.0, 0.5)}
    assert changed_by_plain({"scales": (1.0,), "arc_k": 20}, ["tam", "msea", "attention"]) == {
        "scales": ["msea"], "arc_k": ["tam", "msea"]}  # tam's and attention's scales are (1,) already
