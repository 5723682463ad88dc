-- A batch's expected precision (the holdout's) and its own estimate with the interval, against
-- how many customers are called: every rank that is a multiple of n / points, and the last.
-- ranked, filled in by web/batches.py: ranked_candidates.sql over the batch's file. Parameters:
-- the file's path (in ranked), then how many points.
with ranked as ({ranked}),
total as (select count(*) as n from ranked)
select rank as called, expected_precision, estimated_precision,
       estimated_precision_low, estimated_precision_high from ranked, total
where rank = n or rank % greatest(1, n // ?) = 0 order by rank
