"""The feature contract of the security-situation model: one row per unit (大队) and day.

The feature build (``features.sql``, Spark SQL over silver) produces exactly ``COLUMNS``; training,
the backtest and scoring read nothing else. A row for day d uses the live feeds of hours on or before
d and the incidents recorded as occurring before d + 1; its label is whether an incident of the legacy
register (AQ_SJDJ) occurs in the unit in the next ``HORIZON_DAYS`` days.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml.common.registry import ModelSpec

MODEL = ModelSpec("security_situation", "security_train")
KEYS = ["centre", "unit", "score_date"]
LABEL = "incident_next_7d"
HORIZON_DAYS = 7
# Inputs that decide whether a row can be scored (not model features).
COVERAGE = ["in_legacy", "in_feeds", "norm_days", "hours_with_data"]


@dataclass(frozen=True)
class Feature:
    name: str
    label_zh: str
    unit_zh: str = "次"


FEATURES: list[Feature] = [
    Feature("alarms_1d", "报警次数"),
    Feature("night_alarms_1d", "夜间报警次数"),
    Feature("severe_alarms_1d", "高等级报警次数"),
    Feature("access_anomalies_1d", "门禁异常次数"),
    Feature("access_forced_1d", "门被强行打开次数"),
    Feature("video_alerts_1d", "视频行为告警次数"),
    Feature("headcount_mismatches_1d", "点名人数不符次数"),
    Feature("help_calls_1d", "求助/紧急对讲次数"),
    Feature("serious_violations_1d", "严重违纪记分次数"),
    Feature("vitals_out_of_range_1d", "体征异常读数"),
    Feature("persons_vitals_out_of_range_1d", "体征异常人数", "人"),
    Feature("patrol_miss_rate_1d", "巡更漏检率", ""),
    Feature("patrol_late_rate_1d", "巡更超时率", ""),
    Feature("device_faults_1d", "设备故障次数"),
    Feature("wristbands_not_worn_1d", "手环未佩戴数", "个"),
    Feature("persons_seen", "在册人数(手环)", "人"),
    Feature("centre_alarms_1d", "所级(周界等)报警次数"),
    Feature("alarms_3d", "近3天报警次数"),
    Feature("access_anomalies_3d", "近3天门禁异常次数"),
    Feature("serious_violations_3d", "近3天严重违纪次数"),
    Feature("vitals_out_of_range_3d", "近3天体征异常读数"),
    Feature("patrol_missed_3d", "近3天巡更漏检点位", "个"),
    Feature("alarms_ratio", "报警次数/30天常态", "倍"),
    Feature("night_alarms_ratio", "夜间报警/30天常态", "倍"),
    Feature("access_anomalies_ratio", "门禁异常/30天常态", "倍"),
    Feature("video_alerts_ratio", "视频告警/30天常态", "倍"),
    Feature("vitals_out_of_range_ratio", "体征异常/30天常态", "倍"),
    Feature("devices_reporting_ratio", "报送设备数/30天常态", "倍"),
    Feature("incidents_30d", "近30天本单元事件", "起"),
    Feature("incidents_90d", "近90天本单元事件", "起"),
    Feature("centre_incidents_30d", "近30天全所事件", "起"),
    Feature("days_since_incident", "距上次本单元事件天数", "天"),
]
FEATURE_NAMES = [f.name for f in FEATURES]
LABELS_ZH = {f.name: f.label_zh for f in FEATURES}
# The unit's 30-day norms: not model inputs themselves (the ratios are), read by the drivers.
NORMS = ["alarms_norm", "night_alarms_norm", "access_anomalies_norm", "video_alerts_norm", "help_calls_norm",
         "vitals_out_of_range_norm", "patrol_miss_rate_norm", "devices_reporting_norm", "devices_reporting_1d"]
# What the unsupervised anomaly measure looks at: today against the unit's own norm.
ANOMALY_INPUTS = ["alarms_ratio", "night_alarms_ratio", "access_anomalies_ratio", "video_alerts_ratio",
                  "vitals_out_of_range_ratio", "devices_reporting_ratio", "patrol_miss_rate_1d",
                  "serious_violations_1d", "help_calls_1d"]
COLUMNS = KEYS + COVERAGE + FEATURE_NAMES + NORMS + [LABEL]

# The score (0-100) and its four-colour level (四色预警). c = W_MODEL * P(p) + (1 - W_MODEL) * a, with p the
# calibrated probability of an incident in the next 7 days, P(p) its percentile and a the anomaly
# percentile of the day, both among the training unit-days (0-1); score = 100 * the percentile of c among
# the training unit-days. Cut-offs on the score, highest first: 红 the riskiest 3 % of ordinary unit-days,
# 橙 the next 7 %, 黄 the next 15 %, 蓝 the other three quarters. In a tense period more units reach them.
W_MODEL = 0.75
LEVELS = (("红", 97.0), ("橙", 90.0), ("黄", 75.0), ("蓝", 0.0))
INSUFFICIENT = "数据不足"
# A unit-day is scored only with enough input: hours with feed data, and days of history for its norm.
MIN_HOURS = 18
MIN_NORM_DAYS = 7


def level(score: float) -> str:
    for name, cut in LEVELS:
        if score >= cut:
            return name
    return LEVELS[-1][0]
