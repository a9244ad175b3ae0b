"""Metrics against accuracy matrices worked out by hand."""

import math

import pytest

from clbench.metrics import summarize

KEYS = {"acc", "bwt", "fwt", "forgetting", "forgetting_avalanche", "probe_delta"}


def test_single_task_defines_only_acc():
    # rows: base, after task a; columns: a | probes p, q
    R = [
        [0.3, 0.5, 0.7],
        [0.8, 0.4, 0.7],
    ]
    s = summarize(R, ["a"], ["p", "q"])
    assert set(s) == KEYS
    assert s["acc"] == pytest.approx(0.8)
    assert s["bwt"] is None
    assert s["fwt"] is None
    assert s["forgetting"] is None
    assert s["forgetting_avalanche"] is None
    assert s["probe_delta"] == pytest.approx({"p": -0.1, "q": 0.0})


def test_two_tasks():
    # columns: a, b | probe p
    R = [
        [0.2, 0.1, 0.6],   # base
        [0.9, 0.3, 0.55],  # after a
        [0.7, 0.8, 0.5],   # after b
    ]
    s = summarize(R, ["a", "b"], ["p"])
    assert s["acc"] == pytest.approx((0.7 + 0.8) / 2)          # 0.75
    assert s["bwt"] == pytest.approx(0.7 - 0.9)                # -0.2
    assert s["fwt"] == pytest.approx(0.3 - 0.1)                # R[1][b] - R[0][b] = 0.2
    assert s["forgetting"] == pytest.approx(0.9 - 0.7)         # 0.2
    # With two tasks the max in Chaudhry's forgetting has one row: f == -BWT.
    assert s["forgetting"] == pytest.approx(-s["bwt"])
    assert s["forgetting_avalanche"] == pytest.approx(-s["bwt"])
    assert s["probe_delta"] == pytest.approx({"p": -0.1})


def test_three_tasks_chaudhry_differs():
    # columns: a, b, c | probe p
    R = [
        [0.1, 0.2, 0.3, 0.5],   # base
        [0.8, 0.3, 0.3, 0.5],   # after a
        [0.9, 0.9, 0.4, 0.45],  # after b  (a improved further while learning b)
        [0.5, 0.7, 0.9, 0.4],   # after c
    ]
    # By hand (T = 3):
    #   ACC  = (0.5 + 0.7 + 0.9) / 3                          = 0.7
    #   BWT  = ((0.5 - 0.8) + (0.7 - 0.9)) / 2 = (-0.3 - 0.2) / 2 = -0.25
    #   FWT  = ((R1[b] - R0[b]) + (R2[c] - R0[c])) / 2
    #        = ((0.3 - 0.2) + (0.4 - 0.3)) / 2                = 0.1
    #   Chaudhry: f_a = max(R1[a], R2[a]) - R3[a] = max(0.8, 0.9) - 0.5 = 0.4
    #             f_b = max(R1[b], R2[b]) - R3[b] = max(0.3, 0.9) - 0.7 = 0.2
    #             forgetting = (0.4 + 0.2) / 2                = 0.3
    #   Avalanche: ((R1[a] - R3[a]) + (R2[b] - R3[b])) / 2
    #            = ((0.8 - 0.5) + (0.9 - 0.7)) / 2            = 0.25  (= -BWT)
    #   probe p: 0.4 - 0.5                                    = -0.1
    s = summarize(R, ["a", "b", "c"], ["p"])
    assert s["acc"] == pytest.approx(0.7)
    assert s["bwt"] == pytest.approx(-0.25)
    assert s["fwt"] == pytest.approx(0.1)
    assert s["forgetting"] == pytest.approx(0.3)
    assert s["forgetting_avalanche"] == pytest.approx(0.25)
    assert s["forgetting"] != pytest.approx(-s["bwt"])
    assert s["forgetting"] != pytest.approx(s["forgetting_avalanche"])
    assert s["probe_delta"] == pytest.approx({"p": -0.1})


def test_probe_deltas_several_probes_and_no_probes():
    R = [
        [0.5, 0.5, 0.40, 0.90, 0.10],
        [0.6, 0.5, 0.45, 0.70, 0.10],
        [0.7, 0.8, 0.30, 0.60, 0.35],
    ]
    s = summarize(R, ["a", "b"], ["x", "y", "z"])
    assert s["probe_delta"] == pytest.approx({"x": -0.1, "y": -0.3, "z": 0.25})

    s = summarize([[0.0, 0.0], [1.0, 0.5], [0.5, 1.0]], ["a", "b"], [])
    assert s["probe_delta"] == {}
    assert s["acc"] == pytest.approx(0.75)


def test_chaudhry_max_excludes_base_row():
    # Task a scored 1.0 before any learning but only 0.6 after learning it;
    # row 0 must not enter the max: f_a = 0.6 - 0.5, not 1.0 - 0.5.
    R = [
        [1.0, 0.0],
        [0.6, 0.2],
        [0.5, 0.9],
    ]
    assert summarize(R, ["a", "b"], [])["forgetting"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "matrix, tasks, probes, match",
    [
        ([[0.1, 0.2]], ["a"], ["p"], "rows"),                              # missing row 1
        ([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], ["a"], ["p"], "rows"),      # one row too many
        ([[0.1, 0.2], [0.3]], ["a"], ["p"], "row 1 has 1 columns"),
        ([[0.1], [0.3]], ["a"], ["p"], "columns"),
        ([[0.1, 0.2], [0.3, math.nan]], ["a"], ["p"], r"matrix\[1\]\[1\] \('p'\)"),
        ([[0.1, math.inf], [0.3, 0.4]], ["a"], ["p"], "finite"),
        ([[0.1, 0.2], [None, 0.4]], ["a"], ["p"], "finite"),
        ([[0.1]], [], ["p"], "at least one task"),
    ],
)
def test_shape_and_value_errors(matrix, tasks, probes, match):
    with pytest.raises(ValueError, match=match):
        summarize(matrix, tasks, probes)


def test_three_tasks_two_probes_each_definition_by_hand():
    # columns: a, b, c | probes p, q. Numbers chosen so that each common misreading
    # (row 0 in the forgetting max, row T in it, FWT from R[j][j], probes in ACC) differs.
    R = [
        [0.95, 0.10, 0.20, 0.60, 0.30],  # base (a already high before any learning)
        [0.50, 0.25, 0.30, 0.55, 0.35],  # after a
        [0.70, 0.80, 0.45, 0.50, 0.40],  # after b
        [0.40, 0.85, 0.90, 0.45, 0.20],  # after c (b ends above its best earlier score)
    ]
    # By hand (T = 3):
    #   ACC  = (0.40 + 0.85 + 0.90) / 3                                  = 0.71666...
    #   BWT  = ((0.40 - 0.50) + (0.85 - 0.80)) / 2 = (-0.10 + 0.05) / 2  = -0.025
    #   FWT  = ((R1[b] - R0[b]) + (R2[c] - R0[c])) / 2
    #        = ((0.25 - 0.10) + (0.45 - 0.20)) / 2 = (0.15 + 0.25) / 2    = 0.20
    #   Chaudhry: f_a = max(0.50, 0.70) - 0.40 = 0.30   (row 0 would give 0.55)
    #             f_b = max(0.25, 0.80) - 0.85 = -0.05  (row T in the max would give 0)
    #             forgetting = (0.30 - 0.05) / 2                          = 0.125
    #   Avalanche: ((0.50 - 0.40) + (0.80 - 0.85)) / 2 = 0.05 / 2         = 0.025 (= -BWT)
    #   probes: p 0.45 - 0.60 = -0.15, q 0.20 - 0.30 = -0.10
    s = summarize(R, ["a", "b", "c"], ["p", "q"])
    assert s["acc"] == pytest.approx(2.15 / 3)
    assert s["bwt"] == pytest.approx(-0.025)
    assert s["fwt"] == pytest.approx(0.20)
    assert s["forgetting"] == pytest.approx(0.125)
    assert s["forgetting_avalanche"] == pytest.approx(0.025)
    assert s["probe_delta"] == pytest.approx({"p": -0.15, "q": -0.10})
    assert list(s["probe_delta"]) == ["p", "q"]


def test_single_task_without_probes():
    s = summarize([[0.2], [0.6]], ["a"], [])
    assert s == {"acc": pytest.approx(0.6), "bwt": None, "fwt": None, "forgetting": None,
                 "forgetting_avalanche": None, "probe_delta": {}}


@pytest.mark.parametrize("value", [True, False, "0.5", 1.5, -0.1, 1 + 1e-12])
def test_matrix_values_must_be_scores(value):
    """float() would read "0.5" and True (as 1.0); a score is a number in [0, 1]."""
    R = [[0.1, 0.2], [0.3, 0.4]]
    R[1][0] = value
    with pytest.raises(ValueError, match=r"matrix\[1\]\[0\] \('a'\).*\[0, 1\]"):
        summarize(R, ["a"], ["p"])


def test_score_bounds_and_integers_are_scores():
    s = summarize([[0, 1], [1, 0.0]], ["a"], ["p"])
    assert s["acc"] == 1.0 and s["probe_delta"] == {"p": -1.0}


@pytest.mark.parametrize("tasks, probes", [(["a", "a"], []), (["a"], ["p", "p"]), (["a"], ["a"])])
def test_repeated_column_names_are_refused(tasks, probes):
    """probe_delta is keyed by name, so a repeated probe would silently drop one."""
    R = [[0.5] * (len(tasks) + len(probes)) for _ in range(len(tasks) + 1)]
    with pytest.raises(ValueError, match="column names repeat"):
        summarize(R, tasks, probes)
