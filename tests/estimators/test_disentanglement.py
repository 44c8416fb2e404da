"""Disentanglement metrics (estimators/disentanglement.py) against hand-built codes and cases counted by hand."""

import itertools
import math

import numpy as np
import pytest

from vaelab.estimators import disentanglement as dis

# a full grid of 4 independent factors (3, 4, 4, 4 values), three times over: 576 codes to fit on, 192 to score
GRID = np.array(list(itertools.product(range(3), range(4), range(4), range(4))))
V_FIT, V_SCORE = np.concatenate([GRID] * 3), GRID


def _codes(kind, v, seed):
    rng = np.random.default_rng(seed)
    if kind == "factors":  # each code dimension is one factor (plus a little noise, as a trained encoder's)
        return v + 0.01 * rng.standard_normal(v.shape)
    if kind == "rotated":  # the same information, mixed by a fixed random rotation
        rotation = np.linalg.qr(np.random.default_rng(99).standard_normal((4, 4)))[0]
        return (v + 0.01 * rng.standard_normal(v.shape)) @ rotation
    return rng.standard_normal(v.shape)  # noise, independent of the factors


@pytest.fixture(scope="module")
def results():
    return {kind: dis.scores(_codes(kind, V_FIT, 1), V_FIT, _codes(kind, V_SCORE, 2), V_SCORE)
            for kind in ("factors", "rotated", "noise")}


def test_codes_equal_to_the_factors_score_one(results):
    r = results["factors"]
    assert r["mig"] == pytest.approx(1.0, abs=0.005)  # each factor binned apart: I = H (noise splits a bin rarely)
    assert r["dci_disentanglement"] > 0.99 and r["dci_completeness"] > 0.99 and r["dci_informativeness"] == 1.0
    assert r["sap"] > 0.99 and r["factorvae_score"] == 1.0


def test_a_rotation_of_them_scores_much_lower(results):
    a, b = results["factors"], results["rotated"]
    for key in ("mig", "dci_disentanglement", "dci_completeness"):
        assert b[key] < 0.5 * a[key], key
    assert b["sap"] < 0.75 * a["sap"]
    assert b["dci_informativeness"] > 0.95  # a rotation keeps the information, only spreads it over dimensions


def test_the_most_mixing_rotation_scores_about_zero():
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2  # every z_j: all factors
    r = dis.scores(_codes("factors", V_FIT, 1) @ hadamard, V_FIT, _codes("factors", V_SCORE, 2) @ hadamard, V_SCORE)
    assert r["mig"] < 0.02 and r["sap"] < 0.02 and r["dci_disentanglement"] < 0.02 and r["factorvae_score"] < 0.5
    assert r["dci_informativeness"] > 0.9


def test_independent_noise_scores_about_zero(results):
    r = results["noise"]
    assert abs(r["mig"]) < 0.05 and r["sap"] < 0.05 and r["dci_disentanglement"] < 0.1
    assert r["dci_informativeness"] < 0.45  # chance is 1/3 for the shape-like factor, 1/4 for the others


def test_mig_by_hand():
    # two binary factors on a full grid; z1 = v1 (knows v1 only), z2 = v1 + 2 v2 (knows both)
    v = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    z = np.stack([v[:, 0], v[:, 0] + 2 * v[:, 1]], 1).astype(float)
    # factor 1: I(z1; v1) = I(z2; v1) = log 2, gap 0; factor 2: I(z2; v2) = log 2, I(z1; v2) = 0, gap log 2 / log 2
    r = dis.mig(z, v)
    assert r["mig_per_factor"] == pytest.approx([0.0, 1.0], abs=1e-12) and r["mig"] == pytest.approx(0.5)
    assert dis.mutual_information(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])) == pytest.approx(0.0, abs=1e-12)
    assert dis.mutual_information(np.array([0, 0, 1, 2]), np.array([0, 0, 1, 1])) == pytest.approx(math.log(2))


def test_dci_by_hand():
    assert dis.dci_from_importance(np.eye(2)) == pytest.approx((1.0, 1.0))
    # one dimension shared equally by both factors: D = 1 - H(1/2, 1/2) / log 2 = 0; each factor sits in it: C = 1
    assert dis.dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx((0.0, 1.0))
    # R = [[3, 1], [0, 2]]: rho = (4/6, 2/6); D_1 = 1 - H(3/4, 1/4)/log 2, D_2 = 1
    # C_1 = 1 (all of factor 1 in z1), C_2 = 1 - H(1/3, 2/3)/log 2
    h = lambda *p: -sum(x * math.log(x) for x in p) / math.log(2)  # noqa: E731
    d, c = dis.dci_from_importance(np.array([[3.0, 1.0], [0.0, 2.0]]))
    assert d == pytest.approx(4 / 6 * (1 - h(0.75, 0.25)) + 2 / 6)
    assert c == pytest.approx((1 + 1 - h(1 / 3, 2 / 3)) / 2)


def test_sap_by_hand():
    # z1 = v1 exactly (R^2 = 1 for v1); z2 = (1, 0, 0, 1): uncorrelated with v1 and with v2 = (0, 1, 0, 1)
    v = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    z = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    r = dis.sap(z, v)
    assert np.allclose(r["sap_scores"], [[1.0, 0.0], [0.0, 0.0]])
    assert r["sap"] == pytest.approx(0.5)  # gaps 1 - 0 and 0 - 0
    # z2 = v2 + 0.5 v1: corr(z2, v2)^2 = 1 / 1.25 = 0.8, corr(z2, v1)^2 = 0.25 / 1.25 = 0.2
    z = np.stack([v[:, 0], v[:, 1] + 0.5 * v[:, 0]], 1).astype(float)
    assert np.allclose(dis.sap(z, v)["sap_scores"], [[1.0, 0.0], [0.2, 0.8]])
    assert dis.sap(z, v)["sap"] == pytest.approx(((1 - 0.2) + 0.8) / 2)


def test_factorvae_majority_vote_by_hand():
    fit = np.array([[0, 0], [0, 0], [0, 1], [1, 1]])  # dimension 0 -> factor 0 (2 votes to 1), 1 -> factor 1
    score = np.array([[0, 0], [0, 1], [1, 1], [2, 0]])  # right, wrong, right, and dimension 2 was never voted for
    assert dis.majority_vote_accuracy(fit, score, dims=3) == 0.5


def test_factorvae_score_drops_collapsed_dimensions_and_is_seeded():
    z = _codes("factors", V_FIT, 1)
    dead = np.concatenate([z, np.full((len(z), 1), 3.0)], 1)  # a collapsed dimension: constant
    a = dis.factorvae_score(dead, V_FIT, dead, V_FIT, seed=5)
    assert a == {"factorvae_score": 1.0, "factorvae_active": 4}
    noise = _codes("noise", V_FIT, 3)
    assert dis.factorvae_score(noise, V_FIT, noise, V_FIT, seed=5) == dis.factorvae_score(noise, V_FIT, noise, V_FIT,
                                                                                          seed=5)
