-- Every list a landed batch has had, one file per batch and run (append-only), so a rescored
-- or replaced batch keeps its earlier lists.
-- glob: <lake>/batch_candidate_history/*.parquet, filled in by lib/lake.py with quotes doubled
-- (a view takes no parameters). union_by_name: a batch landed before a column existed
-- reads it as missing.
create or replace view batch_candidate_history as
select * from read_parquet('{glob}', union_by_name = true)
