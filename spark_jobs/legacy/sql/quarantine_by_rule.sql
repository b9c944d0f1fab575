-- quarantine.quarantine_by_rule: the quarantined legacy rows, one row per rule broken, without their
-- values. The data-quality dashboard reads this view: its service account may read the view but not
-- quarantine.legacy_rows, whose raw values stay encrypted and restricted (docs/security.md).
create or replace view quarantine.quarantine_by_rule as
select
    q.legacy_table,
    r.rule,
    q.source_file,
    q.quarantined_at,
    q.load_id,
    q.source_row
from quarantine.legacy_rows as q
lateral view explode(q.rules) r as rule
