-- The main graph's candidate list as it stood at a time: the newest snapshot taken by then.
create or replace macro candidates_as_of(as_of) as table
select * from candidate_history
where snapshot_id = (select arg_max(snapshot_id, snapshot_at) from candidate_history
                     where snapshot_at <= as_of)
