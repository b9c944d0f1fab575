-- Security-situation features: one row per unit (大队) and day, as of the end of that day.
--
-- Inputs: silver.feed_unit_hourly (the live feeds per centre, unit and hour), silver.incident (the
-- legacy incident register AQ_SJDJ; FSDD `location` holds the place code, `<centre>-<unit>` for an
-- incident in a unit) and silver.zone_placement (the brigades, DDDM `<centre>-<unit>`, are the
-- legacy unit dimension). A row for day d reads hourly rows of hours on or before d and incidents
-- that occurred before d + 1 only; the label reads the incidents of days d + 1 .. d + 7.
-- Calendar: every unit of the legacy dimension or of the feeds, every day from the first to the
-- last day with feed data; a unit-day without any hourly row has hours_with_data = 0.
-- `{{ silver }}` is the schema and `{{ horizon }}` the label horizon in days (features.py fills
-- them in). The column list is ml/security_situation/contract.py's COLUMNS.
with hourly as (
    select
        centre,
        unit,
        alarms_raised,
        alarms_severe,
        access_anomalies,
        access_forced,
        video_alerts,
        headcount_mismatches,
        help_calls,
        serious_violations,
        vitals_out_of_range,
        persons_vitals_out_of_range,
        patrol_planned,
        patrol_covered,
        patrol_on_time,
        devices_reporting,
        device_faults,
        wristbands_not_worn,
        persons_seen,
        to_date(hour) as day,
        hour(hour) not between 6 and 21 as is_night
    from {{ silver }}.feed_unit_hourly
),

span as (
    select
        min(day) as first_day,
        max(day) as last_day
    from hourly
),

legacy_units as (
    select distinct
        centre,
        substring(brigade, length(centre) + 2) as unit
    from {{ silver }}.zone_placement
    where is_current and brigade like concat(centre, '-%')
),

feed_units as (
    select distinct
        centre,
        unit
    from hourly
    where unit is not null
),

units as (
    select
        coalesce(f.centre, l.centre) as centre,
        coalesce(f.unit, l.unit) as unit,
        l.unit is not null as in_legacy,
        f.unit is not null as in_feeds
    from feed_units as f
    full outer join legacy_units as l on f.centre = l.centre and f.unit = l.unit
),

span_days as (
    select explode(sequence(first_day, last_day)) as day
    from span
),

calendar as (
    select
        u.centre,
        u.unit,
        u.in_legacy,
        u.in_feeds,
        d.day
    from units as u
    cross join span_days as d
),

unit_day as (
    select
        centre,
        unit,
        day,
        count(*) as hours_with_data,
        sum(alarms_raised) as alarms,
        sum(case when is_night then alarms_raised else 0 end) as night_alarms,
        sum(alarms_severe) as severe_alarms,
        sum(access_anomalies) as access_anomalies,
        sum(access_forced) as access_forced,
        sum(video_alerts) as video_alerts,
        sum(headcount_mismatches) as headcount_mismatches,
        sum(help_calls) as help_calls,
        sum(serious_violations) as serious_violations,
        sum(vitals_out_of_range) as vitals_out_of_range,
        max(persons_vitals_out_of_range) as persons_vitals_out_of_range,
        sum(patrol_planned) as patrol_planned,
        sum(patrol_planned - patrol_covered) as patrol_missed,
        sum(patrol_covered - patrol_on_time) as patrol_late,
        max(devices_reporting) as devices_reporting,
        sum(device_faults) as device_faults,
        max(wristbands_not_worn) as wristbands_not_worn,
        max(persons_seen) as persons_seen
    from hourly
    where unit is not null
    group by centre, unit, day
),

centre_day as (
    select
        centre,
        day,
        sum(alarms_raised) as centre_alarms
    from hourly
    where unit is null
    group by centre, day
),

days as (
    select
        c.centre,
        c.unit,
        c.day,
        c.in_legacy,
        c.in_feeds,
        datediff(c.day, date '2000-01-01') as day_n,
        coalesce(u.hours_with_data, 0) as hours_with_data,
        u.alarms,
        u.night_alarms,
        u.severe_alarms,
        u.access_anomalies,
        u.access_forced,
        u.video_alerts,
        u.headcount_mismatches,
        u.help_calls,
        u.serious_violations,
        u.vitals_out_of_range,
        u.persons_vitals_out_of_range,
        u.patrol_planned,
        u.patrol_missed,
        u.patrol_late,
        u.devices_reporting,
        u.device_faults,
        u.wristbands_not_worn,
        u.persons_seen,
        cd.centre_alarms
    from calendar as c
    left join unit_day as u on c.centre = u.centre and c.unit = u.unit and c.day = u.day
    left join centre_day as cd on c.centre = cd.centre and c.day = cd.day
),

windowed as (
    select
        *,
        sum(alarms) over w3 as alarms_3d,
        sum(access_anomalies) over w3 as access_anomalies_3d,
        sum(serious_violations) over w3 as serious_violations_3d,
        sum(vitals_out_of_range) over w3 as vitals_out_of_range_3d,
        sum(patrol_missed) over w3 as patrol_missed_3d,
        avg(alarms) over w30 as alarms_norm,
        avg(night_alarms) over w30 as night_alarms_norm,
        avg(access_anomalies) over w30 as access_anomalies_norm,
        avg(video_alerts) over w30 as video_alerts_norm,
        avg(help_calls) over w30 as help_calls_norm,
        avg(vitals_out_of_range) over w30 as vitals_out_of_range_norm,
        avg(patrol_missed / nullif(patrol_planned, 0)) over w30 as patrol_miss_rate_norm,
        avg(devices_reporting) over w30 as devices_reporting_norm,
        count(alarms) over w30 as norm_days
    from days
    window
        w3 as (partition by centre, unit order by day_n range between 2 preceding and current row),
        w30 as (partition by centre, unit order by day_n range between 30 preceding and 1 preceding)
),

incidents as (
    select
        centre,
        regexp_extract(location, '^[A-Z]{2}[0-9]{2}-(D[0-9]{2})$', 1) as unit,
        to_date(occurred_at) as day
    from {{ silver }}.incident
    where is_current and occurred_at is not null
),

history as (
    select
        w.centre,
        w.unit,
        w.day,
        count(case when i.unit = w.unit and i.day > date_sub(w.day, 30) then 1 end) as incidents_30d,
        count(case when i.unit = w.unit and i.day > date_sub(w.day, 90) then 1 end) as incidents_90d,
        count(case when i.day > date_sub(w.day, 30) then 1 end) as centre_incidents_30d,
        least(datediff(w.day, max(case when i.unit = w.unit then i.day end)), 365) as days_since_incident
    from windowed as w
    left join incidents as i on w.centre = i.centre and w.day >= i.day and i.day > date_sub(w.day, 365)
    group by w.centre, w.unit, w.day
),

future as (
    select
        w.centre,
        w.unit,
        w.day,
        count(i.day) as incidents_next
    from windowed as w
    left join incidents as i
        on
            w.centre = i.centre and w.unit = i.unit
            and w.day < i.day and i.day <= date_add(w.day, {{ horizon }})
    group by w.centre, w.unit, w.day
)

select
    w.centre,
    w.unit,
    w.day as score_date,
    w.in_legacy,
    w.in_feeds,
    w.norm_days,
    w.hours_with_data,
    cast(w.alarms as double) as alarms_1d,
    cast(w.night_alarms as double) as night_alarms_1d,
    cast(w.severe_alarms as double) as severe_alarms_1d,
    cast(w.access_anomalies as double) as access_anomalies_1d,
    cast(w.access_forced as double) as access_forced_1d,
    cast(w.video_alerts as double) as video_alerts_1d,
    cast(w.headcount_mismatches as double) as headcount_mismatches_1d,
    cast(w.help_calls as double) as help_calls_1d,
    cast(w.serious_violations as double) as serious_violations_1d,
    cast(w.vitals_out_of_range as double) as vitals_out_of_range_1d,
    cast(w.persons_vitals_out_of_range as double) as persons_vitals_out_of_range_1d,
    cast(w.patrol_missed / nullif(w.patrol_planned, 0) as double) as patrol_miss_rate_1d,
    cast(w.patrol_late / nullif(w.patrol_planned, 0) as double) as patrol_late_rate_1d,
    cast(w.device_faults as double) as device_faults_1d,
    cast(w.wristbands_not_worn as double) as wristbands_not_worn_1d,
    cast(w.persons_seen as double) as persons_seen,
    cast(w.centre_alarms as double) as centre_alarms_1d,
    cast(w.alarms_3d as double) as alarms_3d,
    cast(w.access_anomalies_3d as double) as access_anomalies_3d,
    cast(w.serious_violations_3d as double) as serious_violations_3d,
    cast(w.vitals_out_of_range_3d as double) as vitals_out_of_range_3d,
    cast(w.patrol_missed_3d as double) as patrol_missed_3d,
    cast(w.alarms_norm as double) as alarms_norm,
    cast(w.night_alarms_norm as double) as night_alarms_norm,
    cast(w.access_anomalies_norm as double) as access_anomalies_norm,
    cast(w.video_alerts_norm as double) as video_alerts_norm,
    cast(w.help_calls_norm as double) as help_calls_norm,
    cast(w.vitals_out_of_range_norm as double) as vitals_out_of_range_norm,
    cast(w.patrol_miss_rate_norm as double) as patrol_miss_rate_norm,
    cast(w.devices_reporting_norm as double) as devices_reporting_norm,
    cast(w.devices_reporting as double) as devices_reporting_1d,
    cast((w.alarms + 1) / (w.alarms_norm + 1) as double) as alarms_ratio,
    cast((w.night_alarms + 1) / (w.night_alarms_norm + 1) as double) as night_alarms_ratio,
    cast((w.access_anomalies + 1) / (w.access_anomalies_norm + 1) as double) as access_anomalies_ratio,
    cast((w.video_alerts + 1) / (w.video_alerts_norm + 1) as double) as video_alerts_ratio,
    cast((w.vitals_out_of_range + 1) / (w.vitals_out_of_range_norm + 1) as double) as vitals_out_of_range_ratio,
    cast(w.devices_reporting / nullif(w.devices_reporting_norm, 0) as double) as devices_reporting_ratio,
    cast(h.incidents_30d as double) as incidents_30d,
    cast(h.incidents_90d as double) as incidents_90d,
    cast(h.centre_incidents_30d as double) as centre_incidents_30d,
    cast(coalesce(h.days_since_incident, 365) as double) as days_since_incident,
    cast(f.incidents_next > 0 as int) as incident_next_7d
from windowed as w
inner join history as h on w.centre = h.centre and w.unit = h.unit and w.day = h.day
inner join future as f on w.centre = f.centre and w.unit = f.unit and w.day = f.day
