-- Each landed batch's list as it stood at a time: the latest of its lists published by then.
create or replace macro batch_candidates_as_of(as_of) as table
select * from batch_candidate_history
where scored_at <= as_of
qualify run_id = arg_max(run_id, scored_at) over (partition by batch_key)
