-- All landed batches' candidates in one ranking. A batch's candidates show only beside the
-- scores of the same run, so a batch whose list is being rebuilt is never mixed.
create or replace view latest_candidates as
select
    row_number() over (
        order by c.affluent_probability desc, c.batch_key, c.customer_key
    ) as candidate_rank,
    c.*
from batch_candidates c
semi join (select distinct batch_key, run_id from batch_scores) s
    on c.batch_key = s.batch_key and c.run_id = s.run_id
