-- Realized precision and recall per source and model version, beside what the flagged
-- customers' own scores promised (lib/outcomes.py adds the interval).
-- Filled in by lib/outcomes.py: rows, the union of labelled_outcome_rows and
-- campaign_outcome_rows where there are such outcomes; top_shares, the precision and recall
-- columns in the top 5/10/20% of scores. exact_max (a parameter): up to how many flagged
-- customers their scores are listed, for the exact interval.
with labelled as (
    select *, row_number() over (partition by source, model_version
                                 order by affluent_probability desc) as rank,
           count(*) over (partition by source, model_version) as n
    from ({rows})
)
select source, model_version, count(*) as customers, sum(up) as affluent, sum(flag) as flagged,
       sum(flag * up) / nullif(sum(flag), 0) as realized_precision,
       -- recall needs customers the version did not flag; a file of called customers has none
       case when sum(flag) < count(*) then sum(flag * up) / nullif(sum(up), 0) end
           as realized_recall,
       min(case when flag = 1 then affluent_probability end) as lowest_flagged_score,
       -- what the flagged customers' own scores promised (lib/estimates)
       sum(flag * affluent_probability) / nullif(sum(flag), 0) as estimated_precision,
       sum(flag * affluent_probability * (1 - affluent_probability)) as flagged_variance,
       case when sum(flag) <= $exact_max then
           list(affluent_probability) filter (where flag = 1) end as flagged_scores,
       {top_shares}
from labelled group by source, model_version order by source, model_version
