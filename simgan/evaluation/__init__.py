"""Evaluation of the paper's experiments (§3.1, §3.2): pure functions of arrays, no files but the report's.

    gaze.py          angular error, % of images within d degrees (Fig. 7), gaze metrics
    hand.py          joint error in pixels, % of joints within d px (Fig. 9), hand metrics
    preservation.py  does refinement keep the labels? pupil shift (eyes), joint depth and silhouette shift (hands)
    realism.py       classifier two-sample test (a fresh CNN) and the human "visual Turing test" page (Table 1)
    figures.py       PNG line charts and image grids drawn with Pillow
    report.py        the paper's numbers (PAPER) and report.md / report.html putting ours beside them

The `evaluate` stage loads arrays and predictions, calls these, and writes metrics with DVCLive.
"""
