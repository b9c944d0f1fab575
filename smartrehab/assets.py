"""Assets that connect the DAGs: a producer lists one in its outlets, a consumer schedules on it."""

from airflow.sdk import Asset

FEED_EVENTS = Asset("smartrehab://bronze/feed_events", extra={"layer": "bronze"})
SILVER_LEGACY = Asset("smartrehab://silver/legacy", extra={"layer": "silver"})
GOLD_MARTS = Asset("smartrehab://gold/marts", extra={"layer": "gold"})
RELAPSE_MODEL = Asset("smartrehab://mlflow/relapse_risk", extra={"layer": "model"})
RELAPSE_SCORES = Asset("smartrehab://gold/relapse_risk_score", extra={"layer": "gold"})
FEED_SILVER = Asset("smartrehab://silver/feed_events", extra={"layer": "silver"})
FEED_UNIT_HOURLY = Asset("smartrehab://silver/feed_unit_hourly", extra={"layer": "silver"})
FEED_ALERTS = Asset("smartrehab://audit/feed_alerts", extra={"layer": "audit"})
SECURITY_MODEL = Asset("smartrehab://mlflow/security_situation", extra={"layer": "model"})
SECURITY_SCORES = Asset("smartrehab://gold/security_situation_score", extra={"layer": "gold"})
EXCHANGE_PACKAGES = Asset("smartrehab://exchange/packages", extra={"layer": "exchange"})
