"""The bundled demo dataset: a synthetic Hang Seng TECH story, generated deterministically.

Beside the flow, not in it: this writes the files the default demo replays into
streams/data/hstech (instruments.yaml, indices.yaml, history.csv, ticks.csv). Every price is
SYNTHETIC; it only retells the news of 2025-09-18: the Hang Seng TECH index up about 4% on
the day, its best day since November 2021, its highest level in four years and about +41%
year to date, led by Baidu and Alibaba.

The story is built in, not hoped for. The index follows anchor closes, and between two
anchors a seeded walk that strays at most a band from the straight line, with daily gains
capped after November 2021. Constituents are seeded walks rescaled each session so that
the capped, free-float weighted index lands exactly on that path. `check_story` then
recomputes every claim from the rows written and raises StoryError if one fails.

    python -m tools.demo_data [--out DIR]
"""
