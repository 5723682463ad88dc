-- Outcomes from landed files that carried C_seg: one row per customer, with the version that
-- scored them, whether it flagged them, its score, and whether they are AFFLUENT.
select $labelled_source as source, model_version, affluent_probability,
       (predicted_segment = 'AFFLUENT')::int as flag, (c_seg = 'AFFLUENT')::int as up
from batch_scores where c_seg is not null
