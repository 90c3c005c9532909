"""core/explanation.py and core/bisection.py on plain data: alignment, shares, words, search."""

from __future__ import annotations

import pytest

from devtrack.core.bisection import BAD, GOOD, SKIP, BisectSearch
from devtrack.core.diff import diff_ops
from devtrack.core.explanation import (
    ADDED,
    CHANGED,
    REMOVED,
    SAME,
    NodeTime,
    align_nodes,
    by_op_type,
    contributions,
    diff_phrases,
    explain_measured,
    explain_structure,
)
from tests.test_diff import make_release


def chain(names: list[str], ms: float = 0.1, op: str = "MatMul") -> list[NodeTime]:
    return [NodeTime(n, op, ms, ("float[1,64]",)) for n in names]


def test_nodes_align_by_name_and_extra_ones_are_added_or_removed() -> None:
    a = chain(["mm0", "mm1", "old"])
    b = [*chain(["mm0", "mm1"]), NodeTime("up_proj", "Gelu", 0.5)]
    pairs = align_nodes(a, b)
    named = {(x.name if x else None, y.name if y else None) for x, y in pairs}
    assert ("mm0", "mm0") in named and ("mm1", "mm1") in named
    assert (None, "up_proj") in named and ("old", None) in named


def test_renamed_nodes_align_by_op_type_and_position() -> None:
    a = [NodeTime("MatMul_0", "MatMul", 0.2), NodeTime("Relu_0", "Relu", 0.01),
         NodeTime("MatMul_1", "MatMul", 0.2)]
    b = [NodeTime("fc/mm", "MatMul", 0.2), NodeTime("fc/act", "Relu", 0.01),
         NodeTime("fc2/mm", "MatMul", 0.2), NodeTime("extra/mm", "MatMul", 0.3)]
    pairs = align_nodes(a, b)
    partner = {y.name: (x.name if x else None) for x, y in pairs if y is not None}
    assert partner == {"fc/mm": "MatMul_0", "fc/act": "Relu_0", "fc2/mm": "MatMul_1",
                       "extra/mm": None}
    ranked = contributions(pairs, total_ms=0.3)
    assert ranked[0].name == "extra/mm" and ranked[0].status == ADDED
    renamed = next(c for c in ranked if c.name == "fc/mm")
    assert renamed.status == SAME and renamed.a_name == "MatMul_0"


def test_changed_nodes_say_what_changed() -> None:
    a = [NodeTime("fc", "MatMul", 0.2, ("float[1,64]",)),
         NodeTime("head", "MatMul", 0.1, ("float[1,32]",))]
    b = [NodeTime("fc", "MatMulInteger", 0.1, ("uint8[1,64]",)),
         NodeTime("head", "MatMul", 0.3, ("float[1,128]",))]
    by_name = {c.name: c for c in contributions(align_nodes(a, b), total_ms=0.1)}
    assert by_name["fc"].status == CHANGED
    assert "quantized" in by_name["fc"].details
    assert any(d.startswith("op MatMul → MatMulInteger") for d in by_name["fc"].details)
    assert "dtype float → uint8" in by_name["fc"].details
    assert by_name["head"].status == CHANGED
    assert "inputs float[1,32] → float[1,128]" in by_name["head"].details


def test_shares_are_of_the_measured_total_and_ranked_by_it() -> None:
    a = [*chain(["mm0", "mm1"], 0.1), NodeTime("gone", "Relu", 0.05)]
    b = chain(["mm0", "mm1"], 0.1) + chain(["up_proj", "down_proj"], 0.5)
    ranked = contributions(align_nodes(a, b), total_ms=1.0)
    assert [c.name for c in ranked[:2]] == ["down_proj", "up_proj"]
    assert ranked[-1].name == "gone" and ranked[-1].status == REMOVED
    assert ranked[-1].share == pytest.approx(-0.05)
    assert sum(c.share or 0 for c in ranked) == pytest.approx(0.95)
    ops = {o.op: o for o in by_op_type(align_nodes(a, b), 1.0)}
    assert (ops["MatMul"].nodes_a, ops["MatMul"].nodes_b) == (2, 4)
    assert ops["MatMul"].delta_ms == pytest.approx(1.0)


def test_a_speedup_ranks_the_biggest_saving_first() -> None:
    a = chain(["mm0", "mm1"], 0.5)
    b = [NodeTime("mm0", "MatMul", 0.5), NodeTime("mm1", "MatMul", 0.1)]
    ranked = contributions(align_nodes(a, b), total_ms=-0.4)
    assert ranked[0].name == "mm1" and ranked[0].share == pytest.approx(1.0)


def test_headline_names_the_added_nodes_and_what_changed() -> None:
    old, new = make_release("1.0", ops={"MatMul": 2}), make_release(
        "1.1", ops={"MatMul": 4}, parent="1.0", config={"layers": 4})
    a = chain(["mm0", "mm1"], 0.1)
    b = chain(["mm0", "mm1"], 0.1) + chain(["up_proj", "down_proj"], 0.5)
    e = explain_measured("m@1.0", "m@1.1", "tiny", "test", a, b, a_ms=0.25, b_ms=1.25,
                         ratio=5.0, ci=(4.8, 5.2), diff=_diff(old, new))
    assert e.headline.startswith("+1 ms (+400%): 100% in 2 added MatMul nodes down_proj, "
                                 "up_proj")
    assert "ops MatMul 2→4" in e.headline and "parent 1.0" in e.headline
    assert e.attributed_share == pytest.approx(1.0)
    data = e.to_dict()
    assert data["nodes"][0]["name"] in ("up_proj", "down_proj")
    assert {"name", "op", "a_ms", "b_ms", "delta_ms", "share", "status"} <= set(data["nodes"][0])


def test_headline_flags_a_change_within_noise() -> None:
    old, new = make_release("1.0"), make_release("1.1")
    e = explain_measured("m@1.0", "m@1.1", "tiny", "test", chain(["mm0"]), chain(["mm0"]),
                         a_ms=1.0, b_ms=1.01, ratio=1.01, ci=(0.98, 1.03), diff=_diff(old, new))
    assert "within noise" in e.headline


def test_structure_alone_says_why_and_lists_op_counts() -> None:
    old, new = make_release("1.0", ops={"FULLY_CONNECTED": 2}), make_release(
        "1.1", ops={"FULLY_CONNECTED": 3, "TANH": 1})
    e = explain_structure("m@1.0", "m@1.1", "tiny", "m@1.1 is tflite", _diff(old, new))
    assert e.source is None and e.nodes == []
    assert e.headline.startswith("no per-operator times: m@1.1 is tflite; from the structure")
    assert "+1 TANH" in e.headline and "FULLY_CONNECTED 2→3" in e.headline
    assert {o.op: (o.nodes_a, o.nodes_b) for o in e.ops} == {"FULLY_CONNECTED": (2, 3),
                                                              "TANH": (0, 1)}
    assert e.to_dict()["op_types"][0]["a_ms"] is None


def test_diff_phrases_cover_ops_size_config_and_data() -> None:
    old = make_release("1.0", ops={"MatMul": 2}, data_version="v1", config={"lr": 0.1})
    new = make_release("1.1", ops={"MatMul": 2, "Gelu": 1}, data_version="v2",
                       config={"lr": 0.2}, size_bytes=5000)
    phrases = diff_phrases(_diff(old, new))
    assert "ops +1 Gelu" in phrases and "data version v1 → v2" in phrases
    assert "config lr 0.1→0.2" in phrases
    assert any(p.startswith("size +") for p in phrases)
    assert diff_ops({"A": 1}, {"A": 1}).empty


def _diff(a, b):
    from devtrack.core.diff import diff_releases

    return diff_releases(a, b)


# --- the bisect search --------------------------------------------------------------------

def run_search(size: int, first_bad: int, skip: frozenset[int] = frozenset()
               ) -> tuple[BisectSearch, list[int]]:
    search = BisectSearch(size)
    asked = []
    while (pos := search.next_position()) is not None:
        asked.append(pos)
        search.mark(pos, SKIP if pos in skip else (BAD if pos >= first_bad else GOOD))
    return search, asked


@pytest.mark.parametrize("first_bad", range(1, 8))
def test_eight_releases_take_at_most_four_measurements(first_bad: int) -> None:
    search, asked = run_search(8, first_bad)
    assert search.first_bad == first_bad and search.last_good == first_bad - 1
    assert len(asked) <= 4 and asked[0] == 7


def test_a_skipped_release_is_stepped_around_and_may_be_the_answer() -> None:
    search, asked = run_search(8, first_bad=4, skip=frozenset({3}))
    assert 3 in asked and search.first_bad == 4
    assert search.last_good == 2 and search.skipped_between() == [3]
    search, _ = run_search(8, first_bad=5, skip=frozenset({2}))
    assert search.first_bad == 5 and search.skipped_between() == []


def test_a_bad_end_that_is_not_bad_ends_the_search() -> None:
    search, asked = run_search(6, first_bad=99)
    assert asked == [5] and search.first_bad is None
    search, asked = run_search(6, first_bad=1, skip=frozenset({5}))
    assert asked == [5] and search.first_bad is None


def test_bisect_search_rejects_bad_use() -> None:
    with pytest.raises(ValueError):
        BisectSearch(1)
    with pytest.raises(ValueError):
        BisectSearch(4).mark(0, BAD)
    with pytest.raises(ValueError):
        BisectSearch(4).mark(2, "ugly")


def test_fused_or_quantized_nodes_align_by_their_indexed_name_token() -> None:
    a = [NodeTime("fused fc0_mm/MatMulAddFusion", "FusedGemm", 0.02),
         NodeTime("fused fc1_mm/MatMulAddFusion", "FusedGemm", 0.02),
         NodeTime("softmax", "Softmax", 0.001)]
    b = [NodeTime("fc0_mm_quant", "DynamicQuantizeMatMul", 0.01), NodeTime("relu0", "Relu", 0.002),
         NodeTime("fc1_mm_quant", "DynamicQuantizeMatMul", 0.01), NodeTime("softmax", "Softmax",
                                                                           0.001)]
    by_name = {c.name: c for c in contributions(align_nodes(a, b), total_ms=-0.018)}
    fc0 = by_name["fc0_mm_quant"]
    assert fc0.a_name == "fused fc0_mm/MatMulAddFusion" and fc0.status == CHANGED
    assert "quantized" in fc0.details and fc0.a_op == "FusedGemm"
    assert by_name["fc1_mm_quant"].a_name == "fused fc1_mm/MatMulAddFusion"
    assert by_name["relu0"].status == ADDED
    e = explain_measured("m@1.0", "m@1.1", "tiny", "test", a, b, a_ms=0.05, b_ms=0.03,
                         ratio=0.6, ci=(0.55, 0.65), diff=_diff(make_release("1.0"),
                                                                make_release("1.1")))
    assert ("in 2 changed DynamicQuantizeMatMul nodes fc0_mm_quant, fc1_mm_quant (op "
            "FusedGemm → DynamicQuantizeMatMul, quantized)") in e.headline, e.headline
