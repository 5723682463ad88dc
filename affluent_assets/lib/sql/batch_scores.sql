-- Every landed batch's rows, scored: one Parquet file per batch in the lake, read as one table.
-- glob: <lake>/batch_scores/*.parquet, filled in by lib/lake.py with quotes doubled
-- (a view takes no parameters). union_by_name: a batch landed before a column existed
-- reads it as missing.
create or replace view batch_scores as
select * from read_parquet('{glob}', union_by_name = true)
