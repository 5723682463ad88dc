-- Outcomes from campaign outcome files (outcome_records: their rows matched to the predictions,
-- lib/outcome_files.py), in the shape of labelled_outcome_rows. Control customers were held
-- back, not called: they measure the campaign's effect (uplift), not the list's precision.
select $campaign_source as source, model_version, affluent_probability, flagged as flag,
       upgraded as up
from outcome_records where control = 0
