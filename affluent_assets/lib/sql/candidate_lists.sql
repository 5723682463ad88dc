-- One row per kept candidate list: when, by which model and policy, and how many candidates.
create or replace view candidate_lists as
select snapshot_id, snapshot_at, any_value(model_version) as model_version,
       any_value(policy) as policy, any_value(score_cut) as score_cut,
       count(*) as candidates
from candidate_history group by snapshot_id, snapshot_at
