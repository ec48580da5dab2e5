"""Speed targets, reported as ratios measured in one run against baselines (`make bench`)."""
