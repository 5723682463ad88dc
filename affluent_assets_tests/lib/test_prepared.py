"""The fitted pipeline applied fast (lib/prepared.py) gives what scikit-learn's own
`Pipeline.predict_proba` gives: for a request's few rows and a file's many, with blanks and
levels the model never saw, and again once the encodings are remembered."""

import numpy as np
import pytest

from affluent_assets.lib import prepared
from affluent_assets.lib.features import MODEL_FEATURES


@pytest.fixture
def rows(demo_model):
    features = demo_model.features.copy()
    features.loc[features.index[:40], "c_edu"] = "A LEVEL NEVER SEEN"
    features.loc[features.index[40:80], "mthcasa"] = np.nan
    features.loc[features.index[80:120], "gn_occ"] = None
    return features


@pytest.mark.parametrize("count", [1, 7, prepared.SMALL_ROWS + 500])
def test_the_prepared_matrix_scores_as_the_pipeline_does(demo_model, rows, count):
    pipeline = demo_model.model.model.pipeline
    sample = rows.sample(n=count, replace=count > len(rows), random_state=count)
    expected = pipeline.predict_proba(sample[MODEL_FEATURES])[:, 1]
    for _ in range(2):  # the second time the categorical encodings come from memory
        got = prepared.pipeline_probability(pipeline, sample)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    matrix = prepared.prepared_matrix(pipeline, sample, "float64")
    transformed = pipeline.named_steps["preprocess"].transform(sample[MODEL_FEATURES])
    np.testing.assert_array_equal(matrix, np.asarray(transformed, dtype="float64"))
    np.testing.assert_allclose(
        prepared.pipeline_probability(pipeline, sample, matrix), expected, rtol=0, atol=1e-9
    )
