-- Each landed batch's estimated precision and recall at the threshold and capacity cuts.
-- glob: <lake>/batch_estimates/*.parquet, filled in by lib/lake.py with quotes doubled
-- (a view takes no parameters). union_by_name: a batch landed before a column existed
-- reads it as missing.
create or replace view batch_estimates as
select * from read_parquet('{glob}', union_by_name = true)
