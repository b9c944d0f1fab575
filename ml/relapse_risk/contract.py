"""The feature contract of the relapse-risk model: what one row of the feature frame holds.

One row per *scoring occasion*: a person's admission (强制隔离戒毒 order) seen as of one day. The
feature build (``features.py``, Spark SQL over silver in ``features.sql``) produces
exactly these columns; training, evaluation, fairness, explanations and scoring read nothing else.
Every feature uses only records whose event date and record time are on or before ``as_of_date``.

Occasions: ``pre_release`` (the day before a release: the training and test rows), ``assessment``
(the day of each diagnostic assessment) and ``current`` (today, for everyone in a centre).
"""

from __future__ import annotations

from dataclasses import dataclass

from ml.common.registry import ModelSpec

#: The registered model (and MLflow experiment) and the DAG that trains it.
MODEL = ModelSpec("relapse_risk", "relapse_train")

KEYS = ["person_pk", "admission_id", "centre", "as_of_date", "occasion"]
# Label: relapse (复吸) within 12 months of release, counted as the 操守保持率 indicator counts it
# (dbt gold_staging.int_release_outcomes, 1-year horizon: relapsed or abstinent at the follow-ups,
# SY_HFJL), and 1 whenever a new admission follows within 365 days. Null where the release is less
# than 12 months before the data's as-of day or the person was lost to follow-up.
LABEL = "relapsed_12m"
# Release facts, for the time-based split (train on older release cohorts, test on the newest).
RELEASE = ["released_on", "release_cohort"]
# Groups the fairness report compares (not features unless listed below as well).
GROUPS = {"sex": "性别", "ethnic_group": "民族(汉族/少数民族)", "age_band": "年龄段", "centre": "戒毒所"}
AGE_BANDS = ("<30", "30-39", "40-49", "50+")


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str          # "numeric" or "categorical"
    label_zh: str      # what a caseworker reads in the top-factor list
    source: str        # legacy table(s) it comes from
    demographic: bool = False  # part of the demographics-only baseline


FEATURES: list[Feature] = [
    # Who the person is (known at admission).
    Feature("age_at_admission", "numeric", "入所年龄", "ZJ_RYJBXX, ZJ_RSDJ", True),
    Feature("sex", "categorical", "性别", "ZJ_RYJBXX", True),
    Feature("education", "categorical", "文化程度", "ZJ_RYJBXX", True),
    Feature("main_drug_class", "categorical", "主要滥用毒品类别", "ZJ_RYJBXX", True),
    # Drug history.
    Feature("age_at_first_use", "numeric", "首次吸毒年龄", "ZJ_XDS"),
    Feature("years_of_use", "numeric", "吸毒年限", "ZJ_XDS"),
    Feature("injection_use", "categorical", "注射吸毒或共用针具", "ZJ_XDS"),
    Feature("daily_use", "categorical", "每日吸食", "ZJ_XDS"),
    Feature("prior_admissions", "numeric", "既往强制隔离戒毒次数", "ZJ_RSDJ, ZJ_XDS"),
    Feature("prior_community_rehab", "numeric", "既往社区戒毒次数", "ZJ_XDS"),
    # Time in custody and in each zone (生理脱毒, 教育适应, 康复巩固, 回归指导).
    Feature("days_in_custody", "numeric", "在所天数", "ZJ_RSDJ"),
    Feature("days_zone_01", "numeric", "生理脱毒区天数", "ZJ_FQFQ"),
    Feature("days_zone_02", "numeric", "教育适应区天数", "ZJ_FQFQ"),
    Feature("days_zone_03", "numeric", "康复巩固区天数", "ZJ_FQFQ"),
    Feature("days_zone_04", "numeric", "回归指导区天数", "ZJ_FQFQ"),
    # Diagnostic assessment: the last comprehensive assessment (一年后 / 期满前 / 延长后复评) so far.
    Feature("last_assessment_result", "categorical", "最近综合诊断评估结果(三项合格)", "ZD_PGJL"),
    Feature("last_social_result", "categorical", "社会环境与适应能力评估结果", "ZD_PGJL"),
    Feature("assessment_failed_areas", "numeric", "最近综合评估未达标项数", "ZD_PGJL"),
    Feature("recovery_score", "numeric", "身心康复评估得分", "ZD_PGJL"),
    Feature("behaviour_score", "numeric", "行为表现评估得分", "ZD_PGJL"),
    Feature("social_score", "numeric", "社会环境与适应能力得分", "ZD_PGJL"),
    # Psychological scales: SCL-90 (overall mean), 16PF, the relapse-risk scale.
    Feature("scl90_gsi_last", "numeric", "SCL-90总均分(最近)", "XL_SCL90"),
    Feature("scl90_gsi_change", "numeric", "SCL-90总均分变化(最近-首次)", "XL_SCL90"),
    Feature("pf16_stability", "numeric", "16PF稳定性(C)", "XL_16PF"),
    Feature("pf16_mental_health", "numeric", "16PF心理健康因素(Y1)", "XL_16PF"),
    Feature("relapse_scale_total", "numeric", "复吸风险量表总分", "XL_FXPG"),
    Feature("craving_vas", "numeric", "渴求程度(VAS)", "XL_FXPG"),
    Feature("relapse_scale_social_support", "numeric", "复吸风险量表社会支持得分", "XL_FXPG"),
    # Behaviour in the centre.
    Feature("deductions_90d", "numeric", "近90天扣分/罚分次数", "ZJ_XWKH"),
    Feature("bonuses_90d", "numeric", "近90天奖分/突出表现次数", "ZJ_XWKH"),
    Feature("serious_violations", "numeric", "严重违纪次数", "ZJ_XWKH"),
    Feature("monthly_score_avg_6m", "numeric", "近6个月月度考核平均分", "ZJ_YDKH"),
    # Family contact and support.
    Feature("visits_per_month", "numeric", "月均亲属会见次数", "ZJ_TSDJ"),
    Feature("calls_per_month", "numeric", "月均亲情电话次数", "ZJ_QQDH"),
    Feature("family_drug_history", "categorical", "家庭成员有吸毒史", "ZJ_JTCY"),
    # Rehabilitation and education participation.
    Feature("training_attendance_rate", "numeric", "康复训练出勤率", "YD_XLJL"),
    Feature("training_per_month", "numeric", "月均康复训练次数", "YD_XLJL"),
    Feature("education_hours_per_month", "numeric", "月均教育学时", "JY_XSHZ"),
]

NUMERIC = [f.name for f in FEATURES if f.kind == "numeric"]
CATEGORICAL = [f.name for f in FEATURES if f.kind == "categorical"]
FEATURE_NAMES = [f.name for f in FEATURES]
DEMOGRAPHIC = [f.name for f in FEATURES if f.demographic]
LABELS_ZH = {f.name: f.label_zh for f in FEATURES}
# The baseline the bureau has today: the pre-release assessment result alone.
ASSESSMENT_BASELINE = ["last_assessment_result", "last_social_result"]
# Every column of the frame, in order.
COLUMNS = KEYS + RELEASE + [LABEL] + [g for g in GROUPS if g not in KEYS and g not in FEATURE_NAMES] + FEATURE_NAMES
