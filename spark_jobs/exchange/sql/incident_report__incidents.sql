-- incident_report / data/incidents.csv: the security incidents that occurred in the month (Beijing
-- time: the Spark session's time zone is Asia/Shanghai, checked by extract.py). No free text (the
-- incident summary, the result) is exchanged.
select
    incident_id,
    centre,
    incident_type,
    is_liuwu,
    date_format(occurred_at, 'yyyy-MM-dd HH:mm:ss') as occurred_at,
    zone,
    severity,
    persons_involved,
    injured,
    deaths,
    reported_to_ministry,
    closed_on
from {{ gold_staging }}.stg_silver__incident
where to_date(occurred_at) between date '{{ first }}' and date '{{ last }}'
