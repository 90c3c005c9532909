"""The sequential side-by-side latency decision: add repeats until the ratio's CI decides.

What is measured. Each repeat of an interleaved run (``bench/interleaved.py``) re-creates
both sessions and yields one ratio B/A (the median of its block ratios). Repeats alternate
which session is created and run first, a bias of 1-3% on this machine, so the log-ratio of
repeat ``j`` is modelled as ``theta + s_j * b + e_j`` with ``s_j = +1`` for even and ``-1``
for odd repeats: ``theta`` is the change, ``b`` the creation-order effect, ``e_j`` noise.
With as many even as odd repeats the least-squares ``theta`` is the mean of the two order
means (the order effect cancels exactly), its standard error ``s / sqrt(n)`` with ``s``
pooled from the residuals on ``n - 2`` degrees of freedom, and the CI is Student's t.

Why not just look again. Checking a 95% CI after every repeat and stopping when it looks
decided rejects far more often than 5%: with eight looks an A/A pair "excludes 1" at some
look about a fifth of the time (``tests/test_sequential.py`` simulates it). So the looks
are fixed in advance (:func:`look_schedule`: after 4, 6, 8, 10, 12, 16, 20, 24 … repeats, up
to the cap) and the error rate ``alpha`` is *spent* over them (weighted Bonferroni alpha
spending): the look after ``n`` repeats uses a two-sided level ``alpha * n / N``, ``N`` the
sum of all looks' repeat counts, so the levels add up to ``alpha``. By the union bound the
chance that *any* look's CI misses the true ratio is at most ``alpha``, however the looks
are chosen to stop on; so the chance of calling an unchanged release slower is at most
``alpha / 2``, and the chance of passing one whose true regression exceeds the limit is at
most ``alpha / 2``. The looks see overlapping data, so the bound is conservative
(simulated: ~2% at 5%).

The decision at a look, with ``t`` the limit (0.01 = 1%) and ``[lo, hi]`` the look's CI of
the ratio: *slower* when ``lo > 1`` and the ratio > ``1 + t``; *faster* when ``hi < 1`` and
the ratio < ``1 / (1 + t)``; *within* the limit when ``hi <= 1 + t`` (a regression beyond it
ruled out); otherwise measure on. At the cap an undecided run stays *undecided*: the gate
passes it with a note, or fails it under ``--inconclusive fail``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_ALPHA = 0.05
FIRST_LOOK = 4  # repeats: two of each creation order, the fewest that leave 2 degrees of freedom
DEFAULT_MAX_REPEATS = 24
DEFAULT_TRIM = 0.2  # of each creation-order group, cut from each end (Yuen's trimmed mean)

SLOWER = "slower"
FASTER = "faster"
WITHIN = "within"  # no regression beyond the limit (the verdict reads "unchanged")
CONTINUE = "continue"
UNDECIDED = "undecided"
DECIDED = (SLOWER, FASTER, WITHIN)


def look_schedule(max_repeats: int) -> tuple[int, ...]:
    """The repeat counts at which the decision looks: 4, 6, … 12, 16, … 24, 32, … up to the cap.

    Steps double as the count grows (2 below 12, 4 below 24, 8 below 48 …), so the number
    of looks, and the alpha each must give up, grows only logarithmically with the cap.
    """
    if max_repeats < FIRST_LOOK or max_repeats % 2:
        raise ValueError(f"max_repeats must be even and >= {FIRST_LOOK}, got {max_repeats}")
    looks, n = [], FIRST_LOOK
    while n < max_repeats:
        looks.append(n)
        n += 2 * 2 ** max(0, math.floor(math.log2(n / 6)))
    looks.append(max_repeats)
    return tuple(looks)


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| > t) for Student's t with integer ``df`` >= 1 (closed form, A&S 26.7.3-4)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    t = abs(t)
    theta = math.atan(t / math.sqrt(df))
    cos2, sin = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:  # odd: (2/pi) [theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...)]
        term, total = 1.0, 0.0
        if df > 1:
            total = term
            for k in range(1, (df - 1) // 2):
                term *= cos2 * (2 * k) / (2 * k + 1)
                total += term
        inside = (2.0 / math.pi) * (theta + sin * math.cos(theta) * total)
    else:  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= cos2 * (2 * k - 1) / (2 * k)
            total += term
        inside = sin * total
    return min(1.0, max(0.0, 1.0 - inside))


def t_critical(level: float, df: int) -> float:
    """The ``t`` with P(|T| > t) = ``level`` (two-sided), by bisection to 1e-10 relative."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > level:
        high *= 2.0
    while high - low > 1e-10 * high:
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_two_sided_p(mid, df) > level else (low, mid)
    return (low + high) / 2.0


def _trimmed(values: Sequence[float], trim: float) -> tuple[float, float, int]:
    """Trimmed mean of ``values``, the winsorized sum of squares, and ``h`` values kept.

    ``g = floor(trim * n)`` values are cut from each end for the mean; for the spread they
    are set to the nearest kept one instead (winsorized), as in Yuen's trimmed t (1974).
    """
    ordered = sorted(values)
    n = len(ordered)
    g = int(trim * n)
    kept = ordered[g:n - g]
    winsorized = [ordered[g]] * g + kept + [ordered[n - g - 1]] * g
    w_mean = sum(winsorized) / n
    return sum(kept) / len(kept), sum((x - w_mean) ** 2 for x in winsorized), len(kept)


def order_balanced_log_ratio(ratios: Sequence[float],
                             trim: float = DEFAULT_TRIM) -> tuple[float, float, float, int]:
    """``(theta, se, order_effect, df)`` of repeat ratios in measurement order (even count).

    ``theta`` is the mean of the even- and the odd-repeat trimmed mean log-ratios, so the
    creation-order effect cancels; ``order_effect`` is half their difference. The standard
    error pools both groups' winsorized variance (Yuen's trimmed t with a pooled variance)
    on ``h_even + h_odd - 2`` degrees of freedom. Without trimming this is the ordinary
    pooled t (``se = s / sqrt(n)``, ``n - 2`` df); trimming 20% cuts a repeat hit by a
    burst of load instead of letting it widen every later look.
    """
    n = len(ratios)
    if n < FIRST_LOOK or n % 2:
        raise ValueError(f"need an even number of at least {FIRST_LOOK} repeats, got {n}")
    if any(not r > 0 or not math.isfinite(r) for r in ratios):
        raise ValueError("repeat ratios must be positive and finite")
    if not 0.0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), got {trim}")
    logs = [math.log(r) for r in ratios]
    groups = [_trimmed(logs[0::2], trim), _trimmed(logs[1::2], trim)]
    variance = sum(ss for _, ss, _ in groups) / (n - 2)
    half = n // 2
    se2 = sum((half - 1) * variance / (h * (h - 1)) for _, _, h in groups) / 4.0
    (mean_e, _, h_e), (mean_o, _, h_o) = groups
    return (mean_e + mean_o) / 2.0, math.sqrt(se2), (mean_e - mean_o) / 2.0, h_e + h_o - 2


@dataclass(frozen=True)
class Look:
    """The decision after ``repeats`` repeats: the ratio, its CI at ``level``, what to do."""

    repeats: int
    ratio: float
    ci_low: float
    ci_high: float
    level: float  # the two-sided error rate this look's CI spends
    order_effect: float  # exp(b): how much higher B/A reads when A is created first
    decision: str  # slower | faster | within | continue | undecided

    @property
    def decided(self) -> bool:
        return self.decision in DECIDED

    def to_dict(self) -> dict[str, float | int | str]:
        return {"repeats": self.repeats, "ratio": self.ratio, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "level": self.level,
                "order_effect": self.order_effect, "decision": self.decision}


@dataclass(frozen=True)
class SequentialPlan:
    """When to look and how much error each look may spend; ``limit`` is relative (0.01 = 1%)."""

    limit: float
    max_repeats: int = DEFAULT_MAX_REPEATS
    alpha: float = DEFAULT_ALPHA

    def __post_init__(self) -> None:
        if not self.limit >= 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        look_schedule(self.max_repeats)  # validates the cap

    @property
    def looks(self) -> tuple[int, ...]:
        return look_schedule(self.max_repeats)

    def look_level(self, repeats: int) -> float:
        """The two-sided level the look after ``repeats`` spends: ``alpha * repeats / sum``.

        Weighted Bonferroni: the levels of all looks sum to ``alpha``, and each look gets
        a share proportional to the repeats it sees. Early looks, which only big changes
        can pass, give up little; the last ones, which settle small ones, keep the most.
        """
        looks = self.looks
        if repeats not in looks:
            raise ValueError(f"{repeats} repeats is not a look of the plan {looks}")
        return self.alpha * repeats / sum(looks)

    def is_look(self, repeats: int) -> bool:
        return repeats in self.looks

    def to_dict(self) -> dict[str, float | int]:
        return {"limit": self.limit, "max_repeats": self.max_repeats, "alpha": self.alpha}

    @classmethod
    def from_dict(cls, data: dict[str, float | int]) -> SequentialPlan:
        return cls(float(data["limit"]), int(data["max_repeats"]), float(data["alpha"]))


def look_at(ratios: Sequence[float], plan: SequentialPlan) -> Look:
    """The decision on the repeat ratios so far (their count must be one of the plan's looks)."""
    n = len(ratios)
    level = plan.look_level(n)
    theta, se, order, df = order_balanced_log_ratio(ratios)
    half = t_critical(level, df) * se
    ratio, low, high = math.exp(theta), math.exp(theta - half), math.exp(theta + half)
    limit = 1.0 + plan.limit
    if low > 1.0 and ratio > limit:
        decision = SLOWER
    elif high < 1.0 and ratio < 1.0 / limit:
        decision = FASTER
    elif high <= limit:
        decision = WITHIN
    else:
        decision = UNDECIDED if n >= plan.max_repeats else CONTINUE
    return Look(n, ratio, low, high, level, math.exp(order), decision)


def run_sequence(ratios: Sequence[float], plan: SequentialPlan) -> list[Look]:
    """Every look the plan takes over ``ratios`` until one decides or the ratios run out.

    The last look is the one that counts; it is ``continue`` only when ``ratios`` stopped
    short of the next look (a measurement cut off).
    """
    looks = []
    for n in plan.looks:
        if n > len(ratios):
            break
        look = look_at(ratios[:n], plan)
        looks.append(look)
        if look.decided:
            break
    return looks
