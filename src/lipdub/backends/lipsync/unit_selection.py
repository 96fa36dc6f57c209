"""Step 5 of DESIGN.md section 3: choose the source frame shown at every output frame (unit selection).

As in unit-selection speech synthesis (Hunt and Black, "Unit selection in a concatenative speech
synthesis system using a large speech database", ICASSP 1996), a Viterbi search (Viterbi 1967)
minimizes target costs (how well a library frame fits the planned mouth, head pose and viseme label of
an output frame) plus concatenation costs (0 for consecutive source frames, so runs of real footage
are preferred; a cut costs a jump plus the mismatch at the join). With viseme labels on both sides the
target cost also compares the labels of the neighbouring frames, so a run of source frames that says
the same viseme sequence (a di/triphone-like unit, as Video Rewrite's triphones; Bregler, Covell and
Slaney 1997) is cheaper than frames that only match one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import StageFailed
from ...lipsync.visemes import viseme_distance


@dataclass
class SearchCosts:
    """Weights of the search (dimensionless; mouth distances are divided by the library's variance).

    Attributes:
        top_k: candidates per output frame by local cost (plus as many successors of the previous
            frame's candidates).
        pose_scale_deg: head-pose difference counted as 1 unit of cost (yaw and pitch; roll weighted
            ``roll_weight``, since in-plane rotation is undone by the compositor's alignment).
        pose_weight: weight of the pose cost against the mouth cost.
        jump_cost: cost of a cut to a non-consecutive source frame.
        join_weight: weight of the mouth/pose mismatch at a cut (successor of j vs the new frame).
        hold_cost: cost of showing the same source frame again, multiplied by how long it was held.
        label_weight: cost of a library frame whose viseme label differs from the output frame's
            (times :func:`lipdub.lipsync.visemes.viseme_distance`, in [0, 1]).
        context_weight: the same for the labels of the previous and next frames (mean of the two).
        closure_cost: cost of showing an open mouth (a library frame outside the closed set) on an
            output frame whose lips must be closed (p, b, m, pauses).
    """

    top_k: int = 20
    pose_scale_deg: float = 10.0
    roll_weight: float = 0.1
    pose_weight: float = 0.25
    jump_cost: float = 0.1
    join_weight: float = 0.2
    hold_cost: float = 0.2
    label_weight: float = 0.5
    context_weight: float = 0.25
    closure_cost: float = 2.0


def pose_cost(pose_a_deg: np.ndarray, pose_b_deg: np.ndarray, scale_deg: float, roll_weight: float) -> np.ndarray:
    """Squared head-pose difference in units of ``scale_deg``: float ``(..., 3)`` yaw, pitch, roll
    (degrees) -> float64 ``(...)`` = (dyaw^2 + dpitch^2 + roll_weight * droll^2) / scale^2."""
    d = (np.asarray(pose_a_deg, np.float64) - np.asarray(pose_b_deg, np.float64)) / scale_deg
    return d[..., 0] ** 2 + d[..., 1] ** 2 + roll_weight * d[..., 2] ** 2


@dataclass
class Labels:
    """Viseme labels for the search: ``out`` int ``(N, 3)`` (previous, current, next frame) of the output
    frames and ``lib`` int ``(L, 3)`` of the library frames; -1 = unknown (costs half a mismatch)."""

    out: np.ndarray
    lib: np.ndarray


def context_labels(labels: np.ndarray, restart: np.ndarray | None = None) -> np.ndarray:
    """int ``(N, 3)``: each frame's (previous, own, next) label; at a run edge (``restart``) the
    neighbour is the frame itself."""
    lab = np.asarray(labels, np.int64)
    prev = np.concatenate([lab[:1], lab[:-1]])
    nxt = np.concatenate([lab[1:], lab[-1:]])
    if restart is not None and len(lab):
        r = np.asarray(restart, bool)
        prev = np.where(r, lab, prev)
        ends = np.concatenate([r[1:], [True]])
        nxt = np.where(ends, lab, nxt)
    return np.stack([prev, lab, nxt], axis=1) if len(lab) else np.zeros((0, 3), np.int64)


def _label_mismatch(dist: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """viseme_distance of labels ``a`` (scalar or array) and ``b`` (array), 0.5 where either is -1."""
    a = np.broadcast_to(a, b.shape)
    known = (a >= 0) & (b >= 0)
    return np.where(known, dist[np.maximum(a, 0), np.maximum(b, 0)], 0.5)


@dataclass
class ViterbiResult:
    """Chosen library entries (int64 ``(N,)`` indices into the library arrays) and the path cost."""

    choice: np.ndarray
    cost: float


class _Costs:
    """Local and transition costs of one search (see :func:`viterbi_retrieval`)."""

    def __init__(self, tgt, op, D, P, nxt, opt: SearchCosts, scale: float, labels: Labels | None,
                 closed_out: np.ndarray | None, lib_closed: np.ndarray | None) -> None:
        self.tgt, self.op, self.D, self.P, self.nxt, self.opt, self.scale = tgt, op, D, P, nxt, opt, scale
        self.labels = labels
        self.closed_out = closed_out
        self.open_penalty = None if lib_closed is None else opt.closure_cost * (~np.asarray(lib_closed, bool))
        self.dist = viseme_distance()
        self.succ_self = np.where(nxt >= 0, nxt, np.arange(len(D)))  # natural successor for the join cost

    def local(self, i: int) -> np.ndarray:
        opt = self.opt
        c = ((self.D - self.tgt[i]) ** 2).sum(axis=1) / self.scale
        c += opt.pose_weight * pose_cost(self.P, self.op[i], opt.pose_scale_deg, opt.roll_weight)
        if self.labels is not None and (opt.label_weight or opt.context_weight):
            o, lib = self.labels.out[i], self.labels.lib
            c += opt.label_weight * _label_mismatch(self.dist, o[1], lib[:, 1])
            c += 0.5 * opt.context_weight * (_label_mismatch(self.dist, o[0], lib[:, 0]) + _label_mismatch(self.dist, o[2], lib[:, 2]))
        if self.open_penalty is not None and self.closed_out is not None and self.closed_out[i]:
            c += self.open_penalty
        return c

    def transitions(self, prev: np.ndarray, new: np.ndarray, hold: np.ndarray):
        """(cost ``(P, C)``, same-frame mask) from the previous candidates to the new ones."""
        opt, D, P = self.opt, self.D, self.P
        sp = self.succ_self[prev]
        join = ((D[sp][:, None, :] - D[new][None, :, :]) ** 2).sum(axis=2) / self.scale \
            + pose_cost(P[sp][:, None, :], P[new][None, :, :], opt.pose_scale_deg, opt.roll_weight)
        trans = opt.jump_cost + opt.join_weight * join
        same = prev[:, None] == new[None, :]
        trans = np.where(self.nxt[prev][:, None] == new[None, :], 0.0, trans)
        return np.where(same, opt.hold_cost * (hold[:, None] + 1), trans), same


def viterbi_retrieval(
    target: np.ndarray,
    out_pose_deg: np.ndarray,
    lib_desc: np.ndarray,
    lib_pose_deg: np.ndarray,
    lib_next: np.ndarray,
    options: SearchCosts | None = None,
    restart: np.ndarray | None = None,
    mouth_scale: float | None = None,
    labels: Labels | None = None,
    closed_out: np.ndarray | None = None,
    lib_closed: np.ndarray | None = None,
) -> ViterbiResult:
    """Choose one library frame per output frame.

    Args:
        target: float ``(N, D)`` planned mouth descriptors.
        out_pose_deg: float ``(N, 3)`` yaw, pitch, roll of the frames being replaced (degrees).
        lib_desc: float ``(L, D)`` library mouth descriptors; lib_pose_deg: float ``(L, 3)``.
        lib_next: int ``(L,)`` library index of the next source frame (j + 1) or -1 when it is not in
            the library (end of track, flagged frame).
        options: the weights (:class:`SearchCosts`, or any object with its fields, e.g.
            :class:`lipdub.backends.lipsync.retrieval.RetrievalOptions`).
        restart: bool ``(N,)`` True where output frame i does not follow i - 1 (a gap): no
            continuity cost there.
        mouth_scale: mouth distances are divided by this (default: the library's total descriptor
            variance, so costs are dimensionless).
        labels: viseme labels of the output and library frames (None: no label costs).
        closed_out: bool ``(N,)`` output frames whose lips must be closed; lib_closed: bool ``(L,)``
            library frames with closed lips. Both given: ``closure_cost`` on every other library frame
            at those output frames.

    Costs: local = |target - desc|^2 / mouth_scale + pose_weight * pose_cost + label costs + closure cost;
    transition j -> k = 0 if k is j's successor; hold_cost * (times j was already held + 1) if k == j;
    else jump_cost + join_weight * (|desc[succ(j)] - desc[k]|^2 / mouth_scale + pose_cost(succ(j), k)),
    with succ(j) = j at the end of a run. Candidates: the ``top_k`` lowest local costs plus the
    successors of the K best previous states (at most 2K); the hold count is carried along each
    state's best path (a first-order approximation of a duration model). O(N (2K)^2 D) time.

    Raises:
        StageFailed: the library is empty.
    """
    opt = options or SearchCosts()
    tgt = np.asarray(target, np.float64)
    D = np.asarray(lib_desc, np.float64)
    nxt = np.asarray(lib_next, np.int64)
    n, L = len(tgt), len(D)
    if L == 0:
        raise StageFailed("lipsync: the retrieval library is empty", "the track has no usable frame")
    if n == 0:
        return ViterbiResult(np.zeros(0, np.int64), 0.0)
    scale = float(mouth_scale) if mouth_scale else max(float(((D - D.mean(axis=0)) ** 2).sum(axis=1).mean()), 1e-12)
    restart = np.zeros(n, bool) if restart is None else np.asarray(restart, bool)
    costs = _Costs(tgt, np.asarray(out_pose_deg, np.float64), D, np.asarray(lib_pose_deg, np.float64), nxt, opt, scale, labels,
                   closed_out, lib_closed)
    k = min(opt.top_k, L)
    lc = costs.local(0)
    cand = np.sort(np.argpartition(lc, k - 1)[:k]) if k < L else np.arange(L)
    score, hold = lc[cand], np.zeros(len(cand), np.int64)
    cands, backs = [cand], []
    for i in range(1, n):
        lc = costs.local(i)
        top = np.argpartition(lc, k - 1)[:k] if k < L else np.arange(L)
        prev = cands[-1]
        if restart[i]:
            new = top
            trans, same = np.zeros((len(prev), len(new))), np.zeros((len(prev), len(new)), bool)
        else:
            succ = nxt[prev[np.argsort(score)[:k]]]  # successors of the K best previous states
            new = np.unique(np.concatenate([top, succ[succ >= 0]]))
            trans, same = costs.transitions(prev, new, hold)
        total = score[:, None] + trans
        best = np.argmin(total, axis=0)
        cols = np.arange(len(new))
        score = total[best, cols] + lc[new]
        hold = np.where(same[best, cols], hold[best] + 1, 0)
        cands.append(new)
        backs.append(best)
    return _backtrack(cands, backs, score)


def _backtrack(cands: list[np.ndarray], backs: list[np.ndarray], score: np.ndarray) -> ViterbiResult:
    n = len(cands)
    path = np.empty(n, np.int64)
    j = int(np.argmin(score))
    cost = float(score[j])
    for i in range(n - 1, -1, -1):
        path[i] = cands[i][j]
        if i > 0:
            j = int(backs[i - 1][j])
    return ViterbiResult(path, cost)


def run_lengths(source_rows: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
    """Lengths of the runs where consecutive output frames show consecutive source rows (int ``(R,)``)."""
    s = np.asarray(source_rows, np.int64)
    if len(s) == 0:
        return np.zeros(0, np.int64)
    cont = np.diff(s) == 1
    if frames is not None:
        cont &= np.diff(np.asarray(frames)) == 1
    cuts = np.flatnonzero(~cont) + 1
    edges = np.concatenate([[0], cuts, [len(s)]])
    return np.diff(edges)
