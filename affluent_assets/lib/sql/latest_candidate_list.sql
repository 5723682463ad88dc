-- The main graph's newest candidate list.
create or replace view latest_candidate_list as
select * from candidate_history
where snapshot_id = (select arg_max(snapshot_id, snapshot_at) from candidate_history)
