-- Every landed batch's current candidates, with reasons: one Parquet file per batch.
-- glob: <lake>/batch_candidates/*.parquet, filled in by lib/lake.py with quotes doubled
-- (a view takes no parameters). union_by_name: a batch landed before a column existed
-- reads it as missing.
create or replace view batch_candidates as
select * from read_parquet('{glob}', union_by_name = true)
