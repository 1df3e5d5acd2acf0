"""Data validation of the manifests with Great Expectations suites: pure functions of data frames.

    columns.py  the columns the suites check that pandas derives first (GX checks one row or one column
                at a time), and the outer join of a refined manifest with its synthetic one
    gx.py       the one adapter to great_expectations: load a suite, validate a frame, summarise the result
                as plain JSON types
    docs.py     the readable list of failures and the self-contained HTML data docs page

Derived columns, added before validation:

    gaze_norm      |(gaze_x, gaze_y, gaze_z)|                           (gaze manifests)
    label_count    how many label columns the row fills                 (every manifest with labels)
    person_splits  on how many sides of test / not test the row's person appears  (every manifest with person, split);
                   blank without a person (GX skips blanks)
    id_match       refined only, on the outer join with the synthetic manifest by id: "both",
                   "refined_only" (an id the synthetic set lacks), "synthetic_only" (an image never refined)
    labels_match   refined only: every label column equals the synthetic one (blank unless id_match is
                   "both"); so the cross-table check is a GX expectation on the merged frame

Suites are plain JSON read into an ephemeral GX context (nothing is saved under `gx/`, so the suites stay
reviewable files). They reference the image size as GX suite parameters `{"$PARAMETER": "image_height"}`
and `{"$PARAMETER": "image_width"}`, filled from `validate_manifest`'s `image_size`.

great_expectations is imported inside `gx.py`'s functions only: its import takes ~3 s, and importing
this package must stay cheap for everything that does not validate.
"""

from simgan.validation.columns import LABEL_COLUMN, derive_columns, join_refined, label_columns
from simgan.validation.docs import describe_failures, render_html
from simgan.validation.gx import EXAMPLES, INDEX_COLUMNS, load_suite, summarise, validate_manifest

__all__ = [
    "EXAMPLES",
    "INDEX_COLUMNS",
    "LABEL_COLUMN",
    "derive_columns",
    "describe_failures",
    "join_refined",
    "label_columns",
    "load_suite",
    "render_html",
    "summarise",
    "validate_manifest",
]
