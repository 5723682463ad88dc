-- A landed batch's candidates ranked best first, with the columns the upload page, the API and
-- the downloads show. source, filled in by web/batches.py: the batch's candidate file with
-- every column lists gained later. No parameter but the file's path: the CSV download writes
-- that one into the text, as COPY takes none.
select
    row_number() over (order by affluent_probability desc, customer_key) as rank,
    customer_key, c_id, source_row, affluent_probability as score, "group", expected_precision,
    expected_recall, estimated_precision, estimated_precision_low, estimated_precision_high,
    reason_1, reason_2, reason_3, model_version, batch_key
from {source}
