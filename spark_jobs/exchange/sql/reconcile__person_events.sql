-- What gold holds for a person_events package (see reconcile__population_daily.sql): the month's
-- admissions, transfers and releases from the movement mart (not from the tables the events are read
-- from) and its diagnostic assessments from the assessment mart.
select
    'events' as file_id,
    'rows:event_type=01' as check_name,
    coalesce(sum(admissions), 0) as check_value
from {{ gold }}.fct_zone_movements
where movement_date between date '{{ first }}' and date '{{ last }}'
union all
select
    'events' as file_id,
    'rows:event_type=02' as check_name,
    coalesce(sum(transfers), 0) as check_value
from {{ gold }}.fct_zone_movements
where movement_date between date '{{ first }}' and date '{{ last }}'
union all
select
    'events' as file_id,
    'rows:event_type=03' as check_name,
    count(*) as check_value
from {{ gold }}.fct_assessment_areas
where assessment_date between date '{{ first }}' and date '{{ last }}'
union all
select
    'events' as file_id,
    'rows:event_type=04' as check_name,
    coalesce(sum(releases), 0) as check_value
from {{ gold }}.fct_zone_movements
where movement_date between date '{{ first }}' and date '{{ last }}'
