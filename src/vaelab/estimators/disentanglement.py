"""Disentanglement metrics against ground-truth factors: MIG, DCI, SAP and the FactorVAE score.

Each reads point codes z (N, Dz) (a model's posterior means, `embed`) and discrete factors v (N, K)
(grid indices, data/shapes.py), NumPy in, numbers out; none depends on a network. Fitted metrics (DCI,
FactorVAE score) fit on one set of codes and score on another, seeded. Estimators, as in Locatello et al.
2019's disentanglement_lib unless said:
    MIG   (Chen et al. 2018)      codes binned in 20 equal-width bins; I(z_j; v_k) by plug-in counts (nats);
                                  mean over factors of (largest - second largest I(z_j; v_k)) / H(v_k)
    DCI   (Eastwood & Williams)   importances R (Dz, K) from scikit-learn's GradientBoostingClassifier per
                                  factor; disentanglement = sum_j rho_j (1 - H_K(R_j.)), completeness = mean_k
                                  (1 - H_Dz(R_.k)), informativeness = mean held-out accuracy of those classifiers
    SAP   (Kumar et al. 2018)     score S_jk = R^2 of z_j for v_k (squared Pearson correlation: their
                                  continuous-factor score, used here for every factor, the shape index too);
                                  mean over factors of the gap between the two largest S_jk
    FactorVAE score (Kim & Mnih)  codes divided by their standard deviation, collapsed dimensions (std < 0.05)
                                  dropped; a vote = (argmin_j Var_batch z_j, k) over a batch of 64 sharing
                                  v_k; majority-vote classifier from fit votes, accuracy on held-out votes
"""

from __future__ import annotations

import math

import numpy as np

BINS = 20  # MIG's histogram bins per code dimension (disentanglement_lib's default)
VOTE_BATCH = 64
FIT_VOTES, SCORE_VOTES = 800, 400
DCI_POINTS = 2000  # DCI fits on at most this many codes (a seeded subset): gradient boosting costs minutes beyond
COLLAPSED = 0.05  # FactorVAE score: a dimension whose std is below this is left out (Kim & Mnih 2018)


def _discrete(z: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each column of z (N, Dz) binned into `bins` equal-width bins over its own range, (N, Dz) ints."""
    out = np.zeros(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        edges = np.histogram_bin_edges(z[:, j], bins)
        out[:, j] = np.digitize(z[:, j], edges[:-1])
    return out


def _entropy(a: np.ndarray) -> float:
    """Plug-in entropy of the values of a (N,), nats."""
    p = np.unique(a, return_counts=True)[1] / len(a)
    return float(-(p * np.log(p)).sum())


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in I(a; b) of two discrete columns (N,), nats: H(a) + H(b) - H(a, b)."""
    joint = np.unique(np.stack([a, b], 1), axis=0, return_inverse=True)[1].reshape(-1)
    return _entropy(a) + _entropy(b) - _entropy(joint)


def mig(z: np.ndarray, v: np.ndarray) -> dict:
    """Mutual information gap (Chen et al. 2018): per factor the top-two gap of I(z_j; v_k), over H(v_k)."""
    zd = _discrete(z)
    mi = np.array([[mutual_information(zd[:, j], v[:, k]) for k in range(v.shape[1])]
                   for j in range(z.shape[1])])  # (Dz, K)
    top = np.sort(mi, axis=0)[::-1]  # (Dz, K) largest first
    second = top[1] if len(top) > 1 else np.zeros(v.shape[1])
    gaps = (top[0] - second) / np.array([_entropy(v[:, k]) for k in range(v.shape[1])])
    return {"mig": float(gaps.mean()), "mig_per_factor": gaps.tolist()}


def dci_from_importance(r: np.ndarray) -> tuple[float, float]:
    """DCI disentanglement and completeness (Eastwood & Williams 2018) of an importance matrix R (Dz, K) >= 0."""
    r = np.abs(r)
    dz, k = r.shape

    def one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:  # rows of p (n, m) normalised, 1 - H / log base
        p = p / np.maximum(p.sum(1, keepdims=True), 1e-12)
        h = -(p * np.log(np.where(p > 0, p, 1.0))).sum(1) / math.log(base)
        return 1.0 - h

    total = r.sum()
    rho = r.sum(1) / total if total > 0 else np.full(dz, 1.0 / dz)  # each code dimension's share of importance
    disentanglement = float((rho * one_minus_entropy(r, k)).sum()) if k > 1 else 1.0
    completeness = float(one_minus_entropy(r.T, dz).mean()) if dz > 1 else 1.0
    return disentanglement, completeness


def dci(z_fit: np.ndarray, v_fit: np.ndarray, z_score: np.ndarray, v_score: np.ndarray, seed: int = 0) -> dict:
    """DCI with scikit-learn's GradientBoostingClassifier (default settings) per factor, fit on z_fit (at most
    DCI_POINTS of them, a seeded subset)."""
    from sklearn.ensemble import GradientBoostingClassifier

    if len(z_fit) > DCI_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(z_fit), DCI_POINTS, replace=False))
        z_fit, v_fit = z_fit[keep], v_fit[keep]

    importance, accuracy = np.zeros((z_fit.shape[1], v_fit.shape[1])), []
    for k in range(v_fit.shape[1]):
        model = GradientBoostingClassifier(random_state=seed).fit(z_fit, v_fit[:, k])
        importance[:, k] = model.feature_importances_
        accuracy.append(float(np.mean(model.predict(z_score) == v_score[:, k])))
    d, c = dci_from_importance(importance)
    return {"dci_disentanglement": d, "dci_completeness": c, "dci_informativeness": float(np.mean(accuracy)),
            "dci_importance": importance.tolist()}


def sap(z: np.ndarray, v: np.ndarray) -> dict:
    """SAP (Kumar et al. 2018): per factor, the gap between the two largest R^2 of one code dimension."""
    zc, vc = z - z.mean(0), (v - v.mean(0)).astype(np.float64)
    cov = zc.T @ vc  # (Dz, K)
    var = np.outer((zc ** 2).sum(0), (vc ** 2).sum(0))
    score = np.where(var > 0, cov ** 2 / np.where(var > 0, var, 1.0), 0.0)  # (Dz, K) squared correlations
    top = np.sort(score, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros(v.shape[1])
    return {"sap": float((top[0] - second).mean()), "sap_scores": score.tolist()}


def _votes(z: np.ndarray, v: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n FactorVAE votes (dimension, factor), (n, 2): a factor, a value of it, a batch sharing it."""
    out = np.zeros((n, 2), dtype=np.int64)
    for i in range(n):
        k = int(rng.integers(v.shape[1]))
        value = v[rng.integers(len(v)), k]
        pool = np.flatnonzero(v[:, k] == value)
        batch = z[rng.choice(pool, VOTE_BATCH)]  # with replacement: a value may have fewer points than a batch
        out[i] = int(np.argmin(batch.var(0))), k
    return out


def majority_vote_accuracy(fit: np.ndarray, score: np.ndarray, dims: int) -> float:
    """The majority-vote classifier dimension -> factor from fit votes (n, 2), its accuracy on score votes;
    a dimension with no fit vote predicts no factor (always wrong), ties go to the lower factor."""
    k = int(max(fit[:, 1].max(), score[:, 1].max())) + 1
    counts = np.zeros((dims, k), dtype=np.int64)
    np.add.at(counts, (fit[:, 0], fit[:, 1]), 1)
    predict = np.where(counts.sum(1) > 0, counts.argmax(1), -1)
    return float(np.mean(predict[score[:, 0]] == score[:, 1]))


def factorvae_score(z_fit: np.ndarray, v_fit: np.ndarray, z_score: np.ndarray, v_score: np.ndarray,
                    seed: int = 0) -> dict:
    """The FactorVAE score (Kim & Mnih 2018) with FIT_VOTES votes from the fit codes, SCORE_VOTES from the others."""
    scale = np.concatenate([z_fit, z_score]).std(0)  # (Dz,) over every code
    active = scale >= COLLAPSED
    if not active.any():
        return {"factorvae_score": 0.0, "factorvae_active": 0}
    rng = np.random.default_rng(seed)
    a, b = (z[:, active] / scale[active] for z in (z_fit, z_score))
    fit, score = _votes(a, v_fit, FIT_VOTES, rng), _votes(b, v_score, SCORE_VOTES, rng)
    return {"factorvae_score": majority_vote_accuracy(fit, score, int(active.sum())),
            "factorvae_active": int(active.sum())}


ESTIMATORS = {
    "mig": f"mutual information gap (Chen et al. 2018), posterior means in {BINS} equal-width bins, plug-in MI",
    "dci_disentanglement": "DCI disentanglement (Eastwood & Williams 2018), importances of scikit-learn's "
                           f"GradientBoostingClassifier per factor, fit on {DCI_POINTS} codes at most",
    "dci_completeness": "DCI completeness, from the same importances",
    "dci_informativeness": "DCI informativeness: the gradient-boosted classifiers' mean accuracy on held-out codes",
    "sap": "SAP (Kumar et al. 2018), gap of the two largest R^2 (squared correlation) per factor",
    "factorvae_score": f"FactorVAE score (Kim & Mnih 2018): majority-vote accuracy, {FIT_VOTES} fit and "
                       f"{SCORE_VOTES} held-out votes, batches of {VOTE_BATCH}",
}


def scores(z_fit: np.ndarray, v_fit: np.ndarray, z_score: np.ndarray, v_score: np.ndarray, seed: int = 0) -> dict:
    """Every metric: MIG and SAP on the fit codes (no fitting), DCI and the FactorVAE score fit there and
    scored on the others; with the estimator of each."""
    out = mig(z_fit, v_fit) | sap(z_fit, v_fit) | dci(z_fit, v_fit, z_score, v_score, seed)
    return out | factorvae_score(z_fit, v_fit, z_score, v_score, seed) | {"estimators": dict(ESTIMATORS)}
