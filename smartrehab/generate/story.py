"""One story per person: the latent relapse risk that drives the synthetic world.

Without it every table is drawn on its own and nothing predicts anything. Here each person gets
one **propensity** (a latent relapse risk, on a log-hazard scale) when they first appear, drawn from
what the literature names as risk factors (opiates and injection, daily use, an early first use,
earlier compulsory episodes, weak family support, little schooling) plus a hidden part that no
record states directly. Each admission then gets a **recovery**: how well this stay goes, worse for
a higher propensity, with noise of its own. Every in-centre record the model can see is a noisy
reading of these two numbers:

======================  ====================================================================
records                 driven by
======================  ====================================================================
ZJ_XDS 吸毒史            the propensity's parts (drug, injection, daily use, age at first use,
                         earlier episodes)
ZD_* 诊断评估            recovery (身心康复, 行为表现), family support (社会环境), near-certain
                         生理脱毒 pass
XL_SCL90, XL_16PF,      propensity and recovery (distress that falls with a good stay;
XL_FXPG 心理测评          16PF C and Y1; the relapse-risk scale's five risk dimensions,
                         craving and social support)
ZJ_XWKH, ZJ_YDKH 行为考核  recovery (more deductions and violations, lower monthly totals)
ZJ_TSDJ, ZJ_QQDH,        family support (how many visits and calls happen; family members'
ZJ_JTCY 家庭              drug history)
YD_XLJL, JY_XSHZ 康复教育  recovery (attendance, hours)
release type            recovery (early release for a good stay, extension for a poor one)
======================  ====================================================================

After release the person relapses at a time drawn from a proportional-hazards model,
``S_i(t) = exp(-H0(t) * exp(eta_i))`` with ``eta_i = PROPENSITY_WEIGHT * propensity - RECOVERY_WEIGHT
* recovery``. The baseline ``H0`` is calibrated (``baseline_hazard``) so that the whole released
population reproduces the Guangdong follow-up of 3,757 releasees: 45 % abstinent at 1 year, 29.4 %
at 2 and 17.6 % at 3 (domain brief §3). That one relapse day is the truth every later record
tells: the follow-up visits (SY_HFJL) report 复吸 from it on, the community drug tests (SY_SQKF)
turn positive after it, and about half of relapses end in a new compulsory order
(``READMIT_SHARE``) some months later, which is the readmission in ZJ_RSDJ.

The relation is deliberately noisy (hidden propensity, per-stay noise, the chance in the relapse
time), so a model on every record reaches a ROC-AUC of roughly 0.70-0.80 and never near 1.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

# Main drug -> its share of the propensity (opiates highest; published follow-ups).
DRUG_RISK = {"101": 0.6, "102": 0.45, "103": 0.5, "201": 0.1, "202": 0.15, "203": 0.0, "204": -0.1,
             "301": -0.2, "401": 0.1, "501": 0.3, "601": 0.05, "999": 0.0}
OPIATES = ("101", "102", "103", "501")
LOW_EDUCATION = ("10", "20", "30", "40")
PROPENSITY_WEIGHT = 1.0
RECOVERY_WEIGHT = 0.45
# Share of relapses that end in a new compulsory-isolation order, and the delay until it.
READMIT_SHARE = 0.5
# Published survival after release (months -> share still abstinent); between the three Guangdong
# points and before the first one the curve is ours (steepest in the first months, as in every
# follow-up study), after three years it flattens.
ABSTINENT_AT = {3: 0.80, 6: 0.64, 12: 0.45, 24: 0.294, 36: 0.176, 60: 0.10, 120: 0.06}


@dataclass(frozen=True)
class Latent:
    """A person's risk factors as drawn (what ZJ_XDS and the family records then report)."""

    first_use_age: int
    injects: bool
    daily_use: bool
    prior_episodes: int       # compulsory episodes before the person's first admission here
    prior_community: int      # community drug-rehab orders before
    family_support: float     # standard normal; higher is more support
    hidden: float             # the part of the propensity no record states


def draw_latent(rng: random.Random, main_drug: str, age: float) -> Latent:
    opiate = main_drug in OPIATES
    first = max(12, min(int(age) - 1, round(rng.gauss(21 if opiate else 24, 5))))
    return Latent(
        first_use_age=first,
        injects=rng.random() < (0.45 if opiate else 0.04),
        daily_use=rng.random() < (0.7 if opiate else 0.35),
        prior_episodes=min(6, int(rng.expovariate(1.1))) if age > 22 else 0,
        prior_community=min(5, int(rng.expovariate(1.4))),
        family_support=rng.gauss(0, 1),
        hidden=rng.gauss(0, 0.6),
    )


def propensity(lat: Latent, main_drug: str, education: str, earlier_admissions: int) -> float:
    """The latent relapse risk (log-hazard scale, about 0 on average, sd about 0.75)."""
    episodes = lat.prior_episodes + earlier_admissions
    return (DRUG_RISK.get(main_drug, 0.0) + 0.35 * lat.injects + 0.2 * lat.daily_use
            + 0.25 * min(episodes, 4) + max(-0.3, min(0.3, 0.04 * (22 - lat.first_use_age)))
            + 0.15 * (education in LOW_EDUCATION) - 0.4 * lat.family_support + lat.hidden - 0.45)


def draw_recovery(rng: random.Random, prop: float) -> float:
    """How well one stay goes (about standard normal; higher is better)."""
    return -0.5 * prop + rng.gauss(0, 0.8)


def log_hazard(prop: float, recovery: float) -> float:
    return PROPENSITY_WEIGHT * prop - RECOVERY_WEIGHT * recovery


def reference_log_hazards(n: int = 6000) -> list[float]:
    """Log-hazards of a fixed reference population drawn like the world's releases (same drug, age and
    education mix, about a third of them on a later admission, as the releases of a five-year history are), for calibrating the baseline."""
    rng = random.Random(8493)
    drugs = {"201": 40, "101": 20, "203": 12, "202": 10, "204": 4, "301": 3, "401": 2, "601": 5, "999": 2}
    education = {"70": 45, "60": 20, "80": 15, "40": 10, "30": 6, "20": 3, "90": 1}
    out = []
    for _ in range(n):
        drug = rng.choices(list(drugs), weights=list(drugs.values()))[0]
        edu = rng.choices(list(education), weights=list(education.values()))[0]
        lat = draw_latent(rng, drug, rng.uniform(19, 58))
        prop = propensity(lat, drug, edu, rng.choices((0, 1, 2, 3), weights=(64, 27, 8, 1))[0])
        out.append(log_hazard(prop, draw_recovery(rng, prop)))
    return out


def baseline_hazard(log_hazards: list[float] | None = None) -> list[tuple[float, float]]:
    """Knots (month, H0) such that the mean of exp(-H0 * exp(eta)) over the population meets
    ``ABSTINENT_AT`` at every knot (bisection per knot; H0 rises with time)."""
    etas = [math.exp(e) for e in (log_hazards or reference_log_hazards())]
    knots = [(0.0, 0.0)]
    for month, target in sorted(ABSTINENT_AT.items()):
        lo, hi = knots[-1][1], 50.0
        for _ in range(60):
            mid = (lo + hi) / 2
            s = sum(math.exp(-mid * e) for e in etas) / len(etas)
            lo, hi = (mid, hi) if s > target else (lo, mid)
        knots.append((float(month), (lo + hi) / 2))
    return knots


def relapse_months(rng: random.Random, eta: float, knots: list[tuple[float, float]]) -> float | None:
    """Months from release to relapse, drawn from S(t) = exp(-H0(t) exp(eta)); None: not within the
    curve's last knot (ten years)."""
    need = -math.log(1.0 - rng.random()) / math.exp(eta)
    for (m0, h0), (m1, h1) in zip(knots, knots[1:], strict=False):
        if need <= h1:
            return m0 + (m1 - m0) * (need - h0) / (h1 - h0)
    return None


@dataclass(frozen=True)
class Outcome:
    relapse_day: date | None
    readmit_day: date | None


def draw_outcome(rng: random.Random, released: date, eta: float, knots: list[tuple[float, float]]) -> Outcome:
    months = relapse_months(rng, eta, knots)
    if months is None:
        return Outcome(None, None)
    relapse = released + timedelta(days=max(1, round(months * 30.4)))
    readmit = None
    if rng.random() < READMIT_SHARE:
        # Found and ordered again: a police check, a positive test, then the order (1-8 months).
        readmit = relapse + timedelta(days=30 + round(rng.expovariate(1 / 75)))
    return Outcome(relapse, readmit)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))
