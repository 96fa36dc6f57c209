"""Ridge regression with blocked cross-validation, for the ``retrieval`` backend's acoustic
audio-to-mouth model (DESIGN.md section 3, step 3; the fallback when no phonemes can be had).

Ridge regression: Hoerl and Kennard 1970. The strength is chosen by *blocked* k-fold cross-validation
(contiguous folds, so neighbouring, nearly identical frames do not leak between training and test;
Bergmeir and Benitez 2012), and the held-out R^2 reported is nested (the strength is chosen inside each
outer training part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InputError

#: Ridge strengths tried (inputs are standardized, so these are in units of frames).
DEFAULT_ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)


@dataclass
class RidgeModel:
    """Linear map ``y = (x - x_mean) @ weights + y_mean``; float64 arrays ``(F,)``, ``(F, D)``, ``(D,)``."""

    x_mean: np.ndarray
    weights: np.ndarray
    y_mean: np.ndarray
    alpha: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, alpha: float) -> "RidgeModel":
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        xm, ym = x.mean(axis=0), y.mean(axis=0)
        xc = x - xm
        w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - ym))
        return cls(xm, w, ym, float(alpha))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.x_mean) @ self.weights + self.y_mean


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Variance-weighted coefficient of determination over all outputs: 1 - SSE / SST (float)."""
    y = np.asarray(y, np.float64)
    sst = float(((y - y.mean(axis=0)) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / max(sst, 1e-30)


def _blocked_predictions(x: np.ndarray, y: np.ndarray, alpha: float, n_folds: int) -> np.ndarray:
    """Out-of-fold predictions with ``n_folds`` contiguous folds (rows in time order)."""
    pred = np.empty_like(y, dtype=np.float64)
    n = len(x)
    for fold in np.array_split(np.arange(n), n_folds):
        train = np.ones(n, bool)
        train[fold] = False
        pred[fold] = RidgeModel.fit(x[train], y[train], alpha).predict(x[fold])
    return pred


def _choose_alpha(x: np.ndarray, y: np.ndarray, alphas, n_folds: int) -> tuple[float, float]:
    scores = [r2_score(y, _blocked_predictions(x, y, a, n_folds)) for a in alphas]
    i = int(np.argmax(scores))
    return float(alphas[i]), float(scores[i])


def fit_ridge_blocked_cv(x: np.ndarray, y: np.ndarray, alphas=DEFAULT_ALPHAS, n_folds: int = 5) -> tuple[RidgeModel, float]:
    """Ridge from ``x`` float ``(T, F)`` to ``y`` float ``(T, D)`` (rows in time order).

    The strength is chosen among ``alphas`` by blocked k-fold CV on all rows; the returned held-out
    R^2 is *nested*: each contiguous outer fold is predicted by a model whose strength was chosen by
    blocked CV inside the remaining rows, so it is not inflated by the choice.

    Returns:
        ``(model fitted on all rows, nested held-out R^2)``.

    Raises:
        InputError: fewer than ``2 * n_folds`` rows.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = len(x)
    if n < 2 * n_folds:
        raise InputError(f"{n} frames are too few to fit the audio-to-mouth model", f"the track needs at least {2 * n_folds} usable frames")
    pred = np.empty_like(y)
    for fold in np.array_split(np.arange(n), n_folds):
        train = np.ones(n, bool)
        train[fold] = False
        inner_folds = max(2, min(n_folds - 1, int(train.sum()) // 4))
        a, _ = _choose_alpha(x[train], y[train], alphas, inner_folds)
        pred[fold] = RidgeModel.fit(x[train], y[train], a).predict(x[fold])
    r2 = r2_score(y, pred)
    alpha, _ = _choose_alpha(x, y, alphas, n_folds)
    return RidgeModel.fit(x, y, alpha), r2

