-- The main graph's candidate lists, one snapshot per run, kept: created empty with the first
-- snapshot's columns (columns snapshots gained later are added by lib/history.py).
create table candidate_history as select * from incoming_frame limit 0
